# docs.mk - docs generated from the code, and the docs' examples run for real.
#   make docs        regenerate the <!-- gen: ... --> regions (flag tables, --help)
#   make docs-check  fail when a generated region is stale (part of docs-test)
#   make docs-test   docs-check; the doc test's self-test (a deliberately wrong
#                    doc must fail where it is wrong); exit statuses and model
#                    versions (tests/docs/*.sh); then
#                    every shell/curl example in README.md, docs/*.md and
#                    models/*.md against a real server (tests/docs/doctest.py).
#                    Part of make test; about 2 minutes (one epoch of PyTorch
#                    QAT in docs/torch.md is most of it).
DOC_FILES := README.md $(wildcard docs/*.md) $(wildcard models/*.md)

.PHONY: docs docs-check docs-test
docs: $(SERVER) $(QAT)
	/usr/bin/python3 tools/gendocs.py --build $(BUILD) $(DOC_FILES)

docs-check: $(SERVER) $(QAT)
	@/usr/bin/python3 tools/gendocs.py --check --build $(BUILD) $(DOC_FILES) && echo "docs-check: generated regions up to date"

docs-test: docs-check $(BUILD)/qstool
	@/usr/bin/python3 tests/docs/doctest.py --build $(BUILD) --selftest tests/docs/wrong.md
	@BUILD=$(BUILD) tests/docs/exit-codes.sh
	@BUILD=$(BUILD) tests/docs/versions.sh
	@/usr/bin/python3 tests/docs/doctest.py --build $(BUILD) $(DOC_FILES)
