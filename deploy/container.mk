# container.mk - the container image and the deployment files (included by
# the Makefile).
#   make docker-test   build the Dockerfile with podman and run it for real
#                      (root; ../shared/tools/container-smoke.sh; minutes)
#   make deploy-test   parse every manifest, check probes/ports against the server

SMOKE        ?= $(CURDIR)/../shared/tools/container-smoke.sh
DT_DIR       := $(BUILD)/docker-test
CHECK_PREDICT := $(CURDIR)/deploy/tests/check-predict.py
SHIPPED_MODELS := $(wildcard models/*.safetensors)
# DOCKER_TEST_VOLUME=1: serve a generated model from a host volume (tests the
# volume mount and hot reload) even when shipped models exist.
DOCKER_TEST_VOLUME ?= $(if $(SHIPPED_MODELS),0,1)
# Least accuracy the shipped model must reach on the first 500 test images.
DOCKER_TEST_MIN_ACC ?= 0.80

.PHONY: docker-test deploy-test

# Two modes:
#  - shipped models (models/*.safetensors, baked into the image): the first
#    test image must be classified right, 500 images at >= DOCKER_TEST_MIN_ACC,
#    and outputs must equal core's reference (qstool expect) bit for bit;
#  - otherwise a random 784-32-10 model from qstool, mounted read-only on
#    /models from the host: outputs equal the reference, and copying a second
#    model into the volume must hot-reload it inside the container.
docker-test: $(QSTOOL)
	@[ -x "$(SMOKE)" ] || { echo "docker-test: $(SMOKE) not found: it comes from the shared/ folder beside the repository (../shared/tools/container-smoke.sh)" >&2; exit 1; }
	@[ "$$(id -u)" = 0 ] || { echo "docker-test: needs root (rootful podman; container-smoke.sh installs podman from Debian)" >&2; exit 1; }
	@rm -rf $(DT_DIR) && mkdir -p $(DT_DIR)/models
	@if [ "$(DOCKER_TEST_VOLUME)" = 1 ]; then \
	  $(QSTOOL) mkmodel $(CURDIR)/$(DT_DIR)/models/random.safetensors 784,32,10 11 class && \
	  $(QSTOOL) mkmodel $(CURDIR)/$(DT_DIR)/second.safetensors 784,16,10 12 && \
	  chmod 755 $(DT_DIR)/models && chmod 644 $(DT_DIR)/models/*.safetensors && \
	  echo "docker-test: no shipped model in the image test: serving a random model from a volume"; \
	  RUN_ARGS="-v $(CURDIR)/$(DT_DIR)/models:/models:ro" \
	  CHECK_CMD="$(CHECK_PREDICT) --page --reference '$(CURDIR)/$(QSTOOL) expect $(CURDIR)/$(DT_DIR)/models/random.safetensors' --min-accuracy 0 --count 100 --reload-dir $(CURDIR)/$(DT_DIR)/models --reload-model $(CURDIR)/$(DT_DIR)/second.safetensors" \
	  $(SMOKE) $(CURDIR); \
	else \
	  m="$(firstword $(SHIPPED_MODELS))"; \
	  echo "docker-test: testing the shipped model(s) in the image: $(SHIPPED_MODELS)"; \
	  CHECK_CMD="$(CHECK_PREDICT) --page --model $$(basename $$m .safetensors) --reference '$(CURDIR)/$(QSTOOL) expect $(CURDIR)/'$$m --expect-correct --min-accuracy $(DOCKER_TEST_MIN_ACC) --count 500" \
	  $(SMOKE) $(CURDIR); \
	fi

# Needs python3-yaml (deploy/install-deps.sh) and the server binary (for the
# default port from --help).
deploy-test: $(SERVER)
	@/usr/bin/python3 deploy/tests/test_manifests.py --server $(SERVER)
