# reliability.mk - abuse, reload/shutdown under load, soak and short fuzz
# passes (included by the Makefile; docs/reliability.md has the figures).
#   make abuse-test    hostile clients vs the real server, then hostile model
#                      files (hostile-models.py), memory amplification and
#                      the budget hog (memory-abuse.py) (~60 s; in make test)
#   make reload-test   50 model replacements under wrk + SIGTERM under load, and
#                      SIGTERM during a 337 MB model's load (~70 s)
#   make soak          10 minutes of wrk; RSS and open fds at start and end
#   make fuzz-ci       every fuzz target for FUZZ_CI_SECONDS (20) s each
#   make tsan-test     integration + abuse tests on the ThreadSanitizer build
.PHONY: abuse-test reload-test soak fuzz-ci tsan-test

abuse-test: all $(BUILD)/qstool
	BUILD=$(BUILD) tests/reliability/abuse.sh
	/usr/bin/python3 tests/reliability/hostile-models.py $(BUILD)
	/usr/bin/python3 tests/reliability/memory-abuse.py $(BUILD)

reload-test: all $(BUILD)/qstool
	@deploy/install-deps.sh --bench
	BUILD=$(BUILD) tests/reliability/reload-under-load.sh
	BUILD=$(BUILD) tests/reliability/sigterm-under-load.sh
	/usr/bin/python3 tests/reliability/sigterm-during-load.py $(BUILD)

SOAK_SECONDS ?= 600
soak: all $(BUILD)/qstool
	@deploy/install-deps.sh --bench
	BUILD=$(BUILD) SOAK_SECONDS=$(SOAK_SECONDS) tests/reliability/soak.sh

tsan-test:
	@$(MAKE) --no-print-directory TSAN=1 all build/tsan/qstool
	tests/reliability/tsan.sh

FUZZ_CI_SECONDS ?= 20
fuzz-ci: fuzz-build
	@tests/fuzz/run.sh $(FUZZ_CI_SECONDS)

# The faults unit suite (tests/unit/test_faults.c) fails the Nth allocation:
# the unit runner's malloc family goes through its wrappers.
$(UNIT): LDFLAGS += -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc -Wl,--wrap=free
