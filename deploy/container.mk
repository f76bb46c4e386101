# container.mk - the container image and the deployment files, run for real
# (included by the Makefile). All need root (rootful podman from Debian,
# installed by the scripts when missing); podman's state lives in build/podman.
#   make container-image  build the Dockerfile as localhost/qatserve:test,
#                         only when the sources changed since the last build
#   make docker-test      the image run: health, answers bit for bit with the
#                         host build, hot reload through a volume, SIGTERM drain
#   make k8s-test         podman kube play of deploy/k8s/deployment.yaml (+ the
#                         models volume), probes, reload; Service/HPA/PVC
#                         checked against the Kubernetes API schema
#   make lb-test          two replicas behind HAProxy, wrk, a rolling restart
#   make prometheus-test  Debian's Prometheus scraping qatserve, queried over
#                         its HTTP API; the alert rules checked and unit-tested
#   make container-clean  remove build/podman (images, containers, storage)
#   make deploy-test      parse every manifest, check probes/ports against the server

.PHONY: infra-deps container-image docker-test k8s-test lb-test prometheus-test container-clean deploy-test

infra-deps:
	@deploy/install-deps.sh --infra

container-image: infra-deps
	@deploy/container/image.sh

docker-test: $(SERVER) $(QSTOOL) container-image
	@BUILD=$(BUILD) deploy/container/docker-test.sh

k8s-test: $(SERVER) $(QSTOOL) container-image
	@BUILD=$(BUILD) deploy/container/k8s-test.sh

lb-test: $(SERVER) $(QSTOOL) container-image
	@BUILD=$(BUILD) deploy/lb/lb-test.sh

prometheus-test: $(SERVER) $(QSTOOL) infra-deps
	@/usr/bin/python3 deploy/prometheus/prometheus-test.py --server $(SERVER) --qstool $(QSTOOL)

container-clean:
	@deploy/container/clean.sh

clean: container-clean

# Needs python3-yaml (deploy/install-deps.sh) and the server binary (for the
# default port from --help).
deploy-test: $(SERVER)
	@/usr/bin/python3 deploy/tests/test_manifests.py --server $(SERVER)
