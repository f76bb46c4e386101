# bench.mk - benchmarks (included by the Makefile). `make bench` runs every
# bench-* target; each writes its report under $(BUILD)/bench/.
#
# oneDNN is a bench-only peer: used when its header is installed
# (libdnnl-dev), never a dependency of libqat.
BENCH_DNNL := $(shell printf '\#include <dnnl.h>\n' | $(CC) -E -x c - >/dev/null 2>&1 && echo 1)
BENCH_KERNELS_DEFS := $(if $(BENCH_DNNL),-DHAVE_DNNL)
BENCH_KERNELS_LIBS := $(if $(BENCH_DNNL),-ldnnl)

.PHONY: bench-fp32 bench bench-kernels bench-mlp bench-http bench-grpc bench-latency bench-startup bench-rows
# The whole suite, one run (~6-8 min on 2 cores): kernels, the whole MLP vs
# PyTorch, /predict under wrk vs the peers, the int8/fp32 latency
# distribution, start-up time and memory. Results and plots: $(BUILD)/bench/.
bench: bench-kernels bench-fp32 bench-json bench-mlp bench-http bench-grpc bench-latency bench-startup bench-rows
	@echo "bench: results in $(BUILD)/bench/ (*.txt, *.csv, *.png)"

# Then the fp32 baseline once more with OpenBLAS choosing its own kernels
# (our machines pin OPENBLAS_CORETYPE=Haswell; a user's picks by CPUID).
bench-kernels: $(BUILD)/bench_kernels
	@mkdir -p $(BUILD)/bench
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BUILD)/bench_kernels --out $(BUILD)/bench
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
	  $(BUILD)/bench_kernels --out $(BUILD)/bench --blas-only
	@if command -v gnuplot >/dev/null; then \
	  gnuplot -e "csv='$(BUILD)/bench/kernels.csv'; out='$(BUILD)/bench/kernels.png'" \
	    bench/plot_kernels.gp && echo "wrote $(BUILD)/bench/kernels.png"; fi

$(BUILD)/obj/bench/bench_kernels.o: CPPFLAGS += $(BENCH_KERNELS_DEFS)

# The peak loops: one file per instruction set, built by the Makefile's
# per-tier pattern rules (*_avx2.c, *_avxvnni.c, *_avx512vnni.c); the two
# vpdpbusd files include one loop, bench_peak_vnni.h, under their flags.
BENCH_PEAK_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard bench/bench_peak_*.c))
# bench_util.o: the report printer and clock both C benches use.
$(BUILD)/bench_kernels: $(BUILD)/obj/bench/bench_kernels.o $(BUILD)/obj/bench/bench_util.o $(BENCH_PEAK_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIB) $(BENCH_KERNELS_LIBS) $(CORE_LIBS)

# The fp32 baseline of one row: OpenBLAS sgemv vs every tier's gemv_f32,
# on Fashion-MNIST images, the same with no zero pixel, and random rows.
bench-fp32: $(BUILD)/bench_fp32
	@mkdir -p $(BUILD)/bench
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BUILD)/bench_fp32 --out $(BUILD)/bench
$(BUILD)/bench_fp32: $(BUILD)/obj/bench/bench_fp32.o $(BUILD)/obj/bench/bench_util.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/obj/bench/bench_util.o $(LIB) $(CORE_LIBS)

# The whole MLP (shipped model, else a random 784-256-128-10) vs PyTorch.
BENCH_MODEL = $(firstword $(wildcard models/fashion-mnist.safetensors) $(BUILD)/bench/random-784-256-128-10.safetensors)
$(BUILD)/bench/random-784-256-128-10.safetensors: $(BUILD)/qstool
	@mkdir -p $(dir $@)
	$(BUILD)/qstool mkmodel $@ 784,256,128,10 1 class >/dev/null

bench-mlp: $(BUILD)/bench_core $(BENCH_MODEL)
	@mkdir -p $(BUILD)/bench
	@if /usr/bin/python3 -c 'import torch' 2>/dev/null; then \
	  /usr/bin/python3 bench/bench_mlp.py $(BUILD)/bench_core $(BENCH_MODEL) $(BUILD)/bench 3; \
	else echo "bench-mlp: skipped (python3-torch not installed)"; fi

# /predict with 1, 16 and 64 rows per request, one server per kernel tier.
bench-rows: $(SERVER) $(BENCH_MODEL)
	@mkdir -p $(BUILD)/bench/rows-models
	@cp $(BENCH_MODEL) $(BUILD)/bench/rows-models/
	/usr/bin/python3 bench/bench_rows.py $(SERVER) $(BUILD)/bench/rows-models $(BUILD)/bench

# /predict under wrk: qatserve JSON (17- and 6-digit numbers) and binary vs the floor and the peers.
bench-http: $(SERVER) $(BUILD)/qstool $(BUILD)/mhd_jansson
	BUILD=$(BUILD) bench/bench_http.sh

# gRPC ModelInfer (raw and fp32_contents) vs the REST binary path, one server,
# one load generator (h2load), interleaved: req/s and server CPU per request.
bench-grpc: $(SERVER) $(BUILD)/qstool
	@deploy/install-deps.sh --bench
	/usr/bin/python3 bench/bench_grpc.py $(BUILD) $${DURATION:-5} $${REPEAT:-3} $${CONNS:-16}

# The server's own per-request int8 and fp32 compute times, as a CDF.
bench-latency: $(SERVER) $(BENCH_MODEL)
	@mkdir -p $(BUILD)/bench/latency-models
	@cp $(BENCH_MODEL) $(BUILD)/bench/latency-models/
	@$(SERVER) --models $(BUILD)/bench/latency-models --port 0 --quiet >$(BUILD)/bench/latency-server.log 2>&1 & \
	  spid=$$!; port=""; \
	  for i in $$(seq 1 100); do \
	    port=$$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' $(BUILD)/bench/latency-server.log); \
	    [ -n "$$port" ] && break; sleep 0.05; done; \
	  /usr/bin/python3 bench/bench_latency.py $$port $(BUILD)/bench 3000; \
	  rc=$$?; kill $$spid; wait $$spid 2>/dev/null; exit $$rc
	@if command -v gnuplot >/dev/null; then \
	  gnuplot -e "csv='$(BUILD)/bench/latency_cdf.csv'; out='$(BUILD)/bench/latency.png'" \
	    bench/plot_latency.gp && echo "wrote $(BUILD)/bench/latency.png"; fi

# Start-up time to ready and resident memory with the shipped models.
bench-startup: $(SERVER) $(BENCH_MODEL)
	@mkdir -p $(BUILD)/bench/startup-models
	@cp $(BENCH_MODEL) $(BUILD)/bench/startup-models/
	@/usr/bin/python3 deploy/wrk/mkbodies.py $(BUILD)/wrk >/dev/null 2>&1 || true
	/usr/bin/python3 bench/bench_startup.py $(SERVER) $(if $(wildcard models/*.safetensors),models,$(BUILD)/bench/startup-models) 7 \
	  | tee $(BUILD)/bench/startup.txt

# Number parsing and printing, ns per number (5- and 17-digit numbers), vs
# strtof and snprintf "%.9g" in the same run.
.PHONY: bench-json
bench-json: $(BUILD)/bench_json
	@mkdir -p $(BUILD)/bench
	$(BUILD)/bench_json --out $(BUILD)/bench

$(BUILD)/obj/bench/bench_json.o: CPPFLAGS += -Iserver
$(BUILD)/bench_json: $(BUILD)/obj/bench/bench_json.o $(BUILD)/obj/bench/bench_util.o $(filter %/json.o %/num.o,$(SRV_OBJ))
	$(CC) $(LDFLAGS) -o $@ $^ -lm
