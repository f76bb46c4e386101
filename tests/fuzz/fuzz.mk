# Fuzz targets (libFuzzer, clang-14). `make fuzz FUZZ_SECONDS=N` builds every
# tests/fuzz/fuzz_*.c against the core (and server parsers) compiled with
# -fsanitize=fuzzer-no-link,address,undefined and runs each for N seconds from
# its committed seed corpus, with its dictionary when there is one
# (tests/fuzz/run.sh; fails if any target crashes).
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 30
FUZZ_DIR     := build/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -pthread -g -O1 -Wall -Wextra -Werror $(FUZZ_SAN) \
                -Icore -Iserver -I/usr/include/x86_64-linux-gnu/openblas-pthread
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_LIB_SRC := $(wildcard core/*.c) $(filter-out server/main.c,$(wildcard server/*.c server/*/*.c)) $(GRPC_PB_C)
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o) $(FUZZ_DIR)/obj/tests/lib/model_fixture.o

$(FUZZ_DIR)/obj/%_avx2.o: %_avx2.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -mavx2 -mfma -MMD -MP -c $< -o $@
$(FUZZ_DIR)/obj/%_avxvnni.o: %_avxvnni.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -mavx2 -mfma -mavxvnni -MMD -MP -c $< -o $@
$(FUZZ_DIR)/obj/%_avx512vnni.o: %_avx512vnni.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -mavx2 -mfma -mavx512f -mavx512bw -mavx512vl \
	  -mavx512vnni -MMD -MP -c $< -o $@
$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(PC_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
FUZZ_CFLAGS  += -I$(GRPC_GEN)
$(FUZZ_LIB_OBJ): | $(GRPC_PB_H)
# Objects are kept between runs (they are intermediates of a pattern chain).
.SECONDARY: $(FUZZ_LIB_OBJ)
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_server.h $(FUZZ_LIB_OBJ) | $(GRPC_PB_H)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(PC_CFLAGS) -fsanitize=fuzzer -MMD -MP $< $(FUZZ_LIB_OBJ) -o $@ $(PC_LIBS) $(CORE_LIBS)
# Header dependencies (server.h's request record is shared with the targets).
-include $(shell find $(FUZZ_DIR) -name '*.d' 2>/dev/null)

.PHONY: fuzz fuzz-build
fuzz-build:
	@deploy/install-deps.sh --fuzz
	@$(MAKE) --no-print-directory $(FUZZ_TARGETS)

fuzz: fuzz-build
	@tests/fuzz/run.sh $(FUZZ_SECONDS)
