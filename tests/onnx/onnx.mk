# onnx.mk - ONNX in and out (issue 12), ONNX Runtime as the reference.
#   make onnx-test     export (tools/qat2onnx.py) -> ONNX Runtime == core on
#                      every row; graphs built by the test in every form ->
#                      tools/onnx2qat.py -> /predict == ONNX Runtime on every
#                      row (10,000 Fashion-MNIST + 10,000 random); refusals
#   make onnx-fashion  the same with all of Fashion-MNIST's 70,000 images
# Needs python3-onnx (/usr/bin/python3) and node; onnxruntime-node comes from
# tests/ort's package-lock (tests/ort/ensure.sh). Skipped with a note
# without python3-onnx.

ONNX_PY   ?= /usr/bin/python3
ONNX_HAVE := $(ONNX_PY) -c 'import onnx, numpy' 2>/dev/null
ONNX_CORE := $(BUILD)/run_core

.PHONY: onnx-test onnx-fashion

onnx-test: $(ONNX_CORE) $(SERVER)
	@if $(ONNX_HAVE); then \
	  tests/ort/ensure.sh && \
	  $(ONNX_PY) tests/onnx/test_onnx.py --run-core $(ONNX_CORE) --server $(SERVER) \
	    --work $(BUILD)/onnx --rows 10000 --summary $(BUILD)/onnx/summary.json; \
	else echo "onnx-test: skipped (python3-onnx not installed: deploy/install-deps.sh --onnx)"; fi

onnx-fashion: $(ONNX_CORE) $(SERVER)
	@if $(ONNX_HAVE); then \
	  tests/ort/ensure.sh && \
	  $(ONNX_PY) tests/onnx/test_onnx.py --run-core $(ONNX_CORE) --server $(SERVER) \
	    --work $(BUILD)/onnx-fashion --rows 10000 --fashion-all \
	    --summary $(BUILD)/onnx-fashion/summary.json; \
	else echo "onnx-fashion: skipped (python3-onnx not installed)"; fi
