#!/usr/bin/env bash
# podman.sh - podman with the settings of the container tests (lib.sh: runc,
# cgroupfs, ulimits, state in build/podman), for running the documented
# `docker ...` commands on a Debian machine without Docker:
#   deploy/container/image.sh                       # build localhost/qatserve:test
#   deploy/container/podman.sh run --rm -d --name qatserve --network=host qatserve:test
#   deploy/container/podman.sh stop -t 15 qatserve
# (root; installs podman from Debian when missing.)
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
podman_install
podman_env
exec podman "$@"
