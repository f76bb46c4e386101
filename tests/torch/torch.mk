# torch.mk - PyTorch QAT models served integer for integer (issue 5).
#   make torch-test     train a small model with PyTorch QAT (~1 s), import it
#                       with tools/torch2qat.py, compare core's and the
#                       server's (/predict) outputs with PyTorch's on every
#                       row; refusal cases (~10-15 s in all)
#   make torch-fashion  the same on all of Fashion-MNIST, 784-256-128-10
#                       (~75 s): the numbers in docs/torch.md;
#                       TORCH_REUSE=--reuse skips retraining
#   make bench-torch    PyTorch fp32 / int8 (qnnpack, onednn) and qatserve fp32 /
#                       int8 side by side: latency at batch 1 and 64, accuracy
# Needs python3-torch (/usr/bin/python3); skipped with a note without it.
# Never downloads: Debian's Fashion-MNIST (or synthetic data without it).

TORCH_PY   ?= /usr/bin/python3
TORCH_CORE := $(BUILD)/run_core
TORCH_BENCH := $(BUILD)/bench_core
TORCH_HAVE := $(TORCH_PY) -c 'import torch' 2>/dev/null
# With the server built, torch-test also compares POST /predict.
TORCH_SRV  := $(if $(wildcard server/main.c),$(SERVER))

.PHONY: torch-test torch-fashion bench-torch

$(TORCH_CORE): tests/torch/run_core.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(CORE_LIBS)

$(TORCH_BENCH): tests/torch/bench_core.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(CORE_LIBS)

torch-test: $(TORCH_CORE) $(TORCH_SRV)
	@if $(TORCH_HAVE); then \
	  $(TORCH_PY) tests/torch/test_torch.py --run-core $(TORCH_CORE) \
	    $(if $(TORCH_SRV),--server $(TORCH_SRV)) \
	    --work $(BUILD)/torch --summary $(BUILD)/torch/summary.json; \
	else echo "torch-test: skipped (python3-torch not installed)"; fi

torch-fashion: $(TORCH_CORE) $(TORCH_SRV)
	@if $(TORCH_HAVE); then \
	  $(TORCH_PY) tests/torch/test_torch.py --run-core $(TORCH_CORE) \
	    $(if $(TORCH_SRV),--server $(TORCH_SRV)) $(TORCH_REUSE) \
	    --work $(BUILD)/torch-fashion --dims 784,256,128,10 --train-rows 60000 \
	    --test-rows 10000 --steps 6000 --quick \
	    --summary $(BUILD)/torch-fashion/summary.json; \
	else echo "torch-fashion: skipped (python3-torch not installed)"; fi

# Reuses the model `make torch-fashion` trained, else trains one (~30 s).
bench-torch: $(TORCH_BENCH)
	@if $(TORCH_HAVE); then \
	  mkdir -p $(BUILD)/torch-bench; \
	  if [ -f $(BUILD)/torch-fashion/qnnpack/quant.pt ]; then \
	    ln -sfn ../torch-fashion/qnnpack $(BUILD)/torch-bench/qnnpack; fi; \
	  $(TORCH_PY) tests/torch/bench_torch.py --bench-core $(TORCH_BENCH) \
	    --work $(BUILD)/torch-bench; \
	else echo "bench-torch: skipped (python3-torch not installed)"; fi
