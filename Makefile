# qatserve - build, test, bench, run.
#   make            build/libqat.a, build/qat, build/qatserve
#   make test       unit tests (Check) + integration tests against a real server
#   make test SAN=1 the same with AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench      kernel / model / server benchmarks (ratios, medians)
#   make run        install what is missing, build, serve models/ on :8080
#   make models     re-create the shipped models from Debian's Fashion-MNIST
# Sources are found by wildcard: a new core/*.c joins libqat, a new
# server/*/*.c joins qatserve, a new tests/unit/*.c joins the unit runner.

CC      ?= gcc
SAN     ?= 0
BUILD   := build
ifeq ($(SAN),1)
BUILD   := build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
endif
ifeq ($(TSAN),1)
BUILD   := build/tsan
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
endif

PKGS    := libmicrohttpd jansson libuv check
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -pthread $(WARN) $(SANFLAGS) -fno-strict-aliasing
CPPFLAGS += -Icore -Iserver -I/usr/include/x86_64-linux-gnu/openblas-pthread
LDFLAGS += -pthread $(SANFLAGS)
BLAS_LIBS := -lopenblas
CORE_LIBS := $(BLAS_LIBS) -ljansson -lz -lm
PC_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PC_LIBS   = $(shell pkg-config --libs libmicrohttpd jansson libuv 2>/dev/null)

CORE_SRC  := $(wildcard core/*.c)
CORE_OBJ  := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
TOOL_SRC  := $(wildcard tools/*.c)
TOOL_OBJ  := $(TOOL_SRC:%.c=$(BUILD)/obj/%.o)
SRV_SRC   := $(filter-out server/main.c,$(wildcard server/*.c server/*/*.c))
SRV_OBJ   := $(SRV_SRC:%.c=$(BUILD)/obj/%.o)
include server/grpc/grpc.mk
UNIT_SRC  := $(wildcard tests/unit/*.c) tests/lib/model_fixture.c
UNIT_OBJ  := $(UNIT_SRC:%.c=$(BUILD)/obj/%.o)

LIB      := $(BUILD)/libqat.a
QAT      := $(BUILD)/qat
SERVER   := $(BUILD)/qatserve
UNIT     := $(BUILD)/test_unit

BINS := $(LIB) $(UNIT)
ifneq ($(wildcard tools/qat.c),)
BINS += $(QAT)
endif
ifneq ($(wildcard server/main.c),)
BINS += $(SERVER)
endif

.PHONY: all deps test unit symbols-test integration bench run models clean fuzz docker-test loadtest
all: $(BINS)

# make test also needs PyTorch and python3-onnx + node: the import tests compare
# with PyTorch and ONNX Runtime integer for integer.
deps:
	@deploy/install-deps.sh --torch --onnx

# Each kernel tier lives in its own *_TIER.c, compiled with that tier's
# flags alone and chosen at run time (core/cpu.c), so the rest of the binary
# stays baseline x86-64 and runs on any x86-64 CPU.
$(BUILD)/obj/%_avx2.o: %_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -mavx2 -mfma -MMD -MP -c $< -o $@
$(BUILD)/obj/%_avxvnni.o: %_avxvnni.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -mavx2 -mfma -mavxvnni -MMD -MP -c $< -o $@
$(BUILD)/obj/%_avx512vnni.o: %_avx512vnni.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -mavx2 -mfma -mavx512f -mavx512bw -mavx512vl -mavx512vnni \
	  -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PC_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(QAT): $(TOOL_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJ) $(LIB) $(CORE_LIBS)

$(SERVER): $(BUILD)/obj/server/main.o $(SRV_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PC_LIBS) $(CORE_LIBS)

$(UNIT): $(UNIT_OBJ) $(SRV_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs check 2>/dev/null) $(PC_LIBS) $(CORE_LIBS)

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit symbols-test integration grpc-test layering-test abuse-test torch-test onnx-test deploy-test browser-test docs-test

# The unit suite under every int8 kernel tier this machine runs (qstool
# tiers, fastest first): all suites with the default tier, then the suites
# whose results go through the process-wide tier (models made, loaded,
# served) once more per other tier. kernels and layer compare every tier with
# the reference in each run; quant, data, json, num and page never touch a
# kernel.
UNIT_TIER_SUITES := model safetensors train server faults
# Sanitizer builds run 3-10x slower (the reference tier under ASan most): Check
# scales every tcase timeout by CK_TIMEOUT_MULTIPLIER.
unit: export CK_TIMEOUT_MULTIPLIER := $(if $(filter 1,$(SAN) $(TSAN)),5,1)
unit: $(UNIT) $(BUILD)/qstool
	@tiers="$$($(BUILD)/qstool tiers)"; first=$$(echo "$$tiers" | head -n 1); \
	echo "unit: int8 kernel tier $$first (QAT_KERNEL=$$first), every suite"; \
	QAT_KERNEL=$$first $(UNIT) || exit 1; \
	for t in $$tiers; do [ "$$t" = "$$first" ] && continue; \
	  for s in $(UNIT_TIER_SUITES); do \
	    echo "unit: int8 kernel tier $$t (QAT_KERNEL=$$t), suite $$s"; \
	    QAT_KERNEL=$$t CK_RUN_SUITE=$$s $(UNIT) || exit 1; done; done

# libqat exports only its public API (core/qat.h, core/qat_train.h); every
# other global symbol is named qat__* (tests/lib/internal_prefix.sh renames).
symbols-test: $(LIB)
	@tests/lib/check_symbols.sh $(LIB)

# Integration tests start the real server on a free loopback port.
integration: all
	@if [ -x tests/integration/run.sh ]; then BUILD=$(BUILD) tests/integration/run.sh; fi

-include bench/bench.mk
-include tests/fuzz/fuzz.mk
-include tests/num/num.mk
-include tests/reliability/reliability.mk
-include tests/layering/layering.mk
-include models/models.mk
-include deploy/deploy.mk
-include deploy/container.mk
-include tests/torch/torch.mk
-include tests/onnx/onnx.mk
-include web/web.mk
-include docs/docs.mk

run:
	@deploy/install-deps.sh
	@$(MAKE) --no-print-directory all
	$(SERVER) --models models --port $${PORT:-8080}

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
