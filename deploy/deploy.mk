# deploy.mk - test helpers and load tests for the server (included by the
# Makefile).

# Test-only helper: random models and core's reference outputs.
QSTOOL := $(BUILD)/qstool
# It prints outputs with the server's own float printer (server/base/num.c) and
# makes models with the test model maker (tests/lib/model_fixture.c).
$(QSTOOL): tests/integration/qstool.c tests/lib/model_fixture.c server/base/num.c server/base/num.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -o $@ $(filter %.c,$^) $(LDFLAGS) $(LIB) $(CORE_LIBS)

integration: $(QSTOOL)

# The bare libmicrohttpd + jansson peer the server is measured against.
PEER := $(BUILD)/mhd_jansson
$(PEER): bench/peers/mhd_jansson.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -o $@ $< $(LDFLAGS) $(PC_LIBS) -ljansson

# Bounded load test: DURATION=5 CONNS="16 64" THREADS=2 make loadtest
loadtest: $(SERVER) $(QSTOOL) $(PEER)
	BUILD=$(BUILD) deploy/wrk/loadtest.sh
