# models/models.mk - `make models`: re-creates the shipped model from Debian's
# Fashion-MNIST (package dataset-fashion-mnist) with the recipe in
# models/RECIPE.md. Deterministic: one seed, single-threaded OpenBLAS, and
# `qat train` pins OpenBLAS's Haswell (AVX2) kernels so every x86-64 machine
# with AVX2 computes the same float sums (AVX-512 kernels round differently).
MODEL_FASHION := models/fashion-mnist.safetensors
MODEL_RECIPE  := --data fashion-mnist --arch 784-256-128-10 --mode qat --epochs 20 --seed 1

models: $(QAT)
	$(QAT) train $(MODEL_RECIPE) --out $(MODEL_FASHION) --log models/fashion-mnist.jsonl
	$(QAT) info $(MODEL_FASHION)

# The README's accuracy table (several minutes; not part of make test).
accuracy-table: $(QAT)
	QAT=$(QAT) tools/accuracy-table.sh
.PHONY: accuracy-table
