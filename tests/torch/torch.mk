# torch.mk - PyTorch QAT models served integer for integer (issue 5).
#   make torch-test    train a small model with PyTorch QAT, import it with
#                      tools/torch2qat.py, compare core's outputs with PyTorch's
# Needs python3-torch (/usr/bin/python3); skipped with a note without it.
# Quick (~15 s), never downloads: Debian's Fashion-MNIST or synthetic data.

TORCH_PY   ?= /usr/bin/python3
TORCH_CORE := $(BUILD)/run_core

.PHONY: torch-test

$(TORCH_CORE): tests/torch/run_core.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(CORE_LIBS)

torch-test: $(TORCH_CORE)
	@if $(TORCH_PY) -c 'import torch' 2>/dev/null; then \
	  $(TORCH_PY) tests/torch/test_torch.py --run-core $(TORCH_CORE) \
	    --work $(BUILD)/torch --summary $(BUILD)/torch/summary.json; \
	else echo "torch-test: skipped (python3-torch not installed)"; fi
