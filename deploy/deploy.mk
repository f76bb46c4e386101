# deploy.mk - test helpers and load tests for the server (included by the
# Makefile).

# Test-only helper: random models and core's reference outputs.
QSTOOL := $(BUILD)/qstool
$(QSTOOL): tests/integration/qstool.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -o $@ $< $(LDFLAGS) $(LIB) $(CORE_LIBS)

integration: $(QSTOOL)
