# docs.mk - docs generated from the code, and the docs' examples run for real.
#   make docs        regenerate the <!-- gen: ... --> regions (flag tables, --help)
#   make docs-check  fail when a generated region is stale (part of docs-test)
#   make docs-test   docs-check, then every shell/curl example in README.md,
#                    docs/*.md and models/RECIPE.md against a real server
#                    (tests/docs/doctest.py; in make test)
DOC_FILES := README.md $(wildcard docs/*.md) $(wildcard models/*.md)

.PHONY: docs docs-check docs-test
docs: $(SERVER) $(QAT)
	/usr/bin/python3 tools/gendocs.py --build $(BUILD) $(DOC_FILES)

docs-check: $(SERVER) $(QAT)
	@/usr/bin/python3 tools/gendocs.py --check --build $(BUILD) $(DOC_FILES) && echo "docs-check: generated regions up to date"

docs-test: docs-check
	@if [ -f tests/docs/doctest.py ]; then /usr/bin/python3 tests/docs/doctest.py --build $(BUILD) $(DOC_FILES); fi
