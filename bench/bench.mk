# bench.mk - benchmarks (included by the Makefile). `make bench` runs every
# bench-* target; each writes its report under $(BUILD)/bench/.
#
# oneDNN is a bench-only peer: used when its header is installed
# (libdnnl-dev), never a dependency of libqat.
BENCH_DNNL := $(shell printf '\#include <dnnl.h>\n' | $(CC) -E -x c - >/dev/null 2>&1 && echo 1)
BENCH_KERNELS_DEFS := $(if $(BENCH_DNNL),-DHAVE_DNNL)
BENCH_KERNELS_LIBS := $(if $(BENCH_DNNL),-ldnnl)

.PHONY: bench bench-kernels
bench: bench-kernels

bench-kernels: $(BUILD)/bench_kernels
	@mkdir -p $(BUILD)/bench
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BUILD)/bench_kernels --out $(BUILD)/bench
	@if command -v gnuplot >/dev/null; then \
	  gnuplot -e "csv='$(BUILD)/bench/kernels.csv'; out='$(BUILD)/bench/kernels.png'" \
	    bench/plot_kernels.gp && echo "wrote $(BUILD)/bench/kernels.png"; fi

$(BUILD)/obj/bench/bench_kernels.o: CPPFLAGS += $(BENCH_KERNELS_DEFS)

$(BUILD)/bench_kernels: $(BUILD)/obj/bench/bench_kernels.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(BENCH_KERNELS_LIBS) $(CORE_LIBS)
