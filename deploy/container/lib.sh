# lib.sh - sourced by the container tests (docker-test.sh, k8s-test.sh,
# image.sh, ../lb/lb-test.sh): rootful podman from Debian, configured for a
# Debian 12 machine that has no Docker daemon and no registry.
#
# Everything podman keeps (images, containers, volumes, its run state, the
# base image's tarball) lives under $PODMAN_DIR (default build/podman), not in
# /var/lib/containers: the tests touch nothing of the machine's own podman,
# `make container-clean` (and `make clean`) removes it all.
#
# Why these settings (found on the project's build machines):
#  - runtime runc, not crun: crun refuses the hybrid cgroup v1/v2 layout
#    ("cgroups in hybrid mode not supported"); cgroup_manager cgroupfs (no
#    systemd session to ask);
#  - default_ulimits soft = hard: root cannot raise its hard nofile limit, so
#    podman's default (1048576) fails; and podman 4.3's kube play swaps soft and
#    hard, so any soft < hard turns into an invalid pair that runc refuses;
#  - catatonit: kube play builds its pause image with it;
#  - no registry: the base image debian:bookworm-slim is made here with
#    debootstrap from the machine's own Debian mirror (image.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PODMAN_DIR=${PODMAN_DIR:-$ROOT/build/podman}
IMAGE=${IMAGE:-localhost/qatserve:test}
BASE_IMAGE=docker.io/library/debian:bookworm-slim
PY=/usr/bin/python3

[ "$(id -u)" = 0 ] || { echo "$(basename "$0"): needs root (rootful podman)" >&2; exit 1; }

log() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*"; }
die() { printf '%s: FAIL: %s\n' "$(basename "$0" .sh)" "$*" >&2; exit 1; }

# Packages, only those missing (nothing installed gets upgraded). podman
# Depends on crun | runc: naming runc keeps crun out on a fresh machine.
podman_install() {
  local p pkgs=()
  for p in podman runc netavark catatonit debootstrap curl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || pkgs+=("$p")
  done
  [ ${#pkgs[@]} -eq 0 ] && return 0
  log "installing from Debian: ${pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
}

podman_env() {
  # podman writes a few things in fixed places whatever its configuration:
  # those that do not exist before the first test are recorded, and
  # clean.sh removes them (only if still empty).
  if [ ! -f "$PODMAN_DIR/created" ]; then
    mkdir -p "$PODMAN_DIR"
    local p
    for p in /run/containers /run/containers/networks /run/runc /var/lib/containers \
             /var/lib/containers/cache /var/lib/containers/cache/blob-info-cache-v1.boltdb; do
      [ -e "$p" ] || echo "$p"
    done >"$PODMAN_DIR/created"
  fi
  mkdir -p "$PODMAN_DIR"/{tmp,run,libpod,networks,storage}
  local nofile
  nofile=$(ulimit -Hn)
  [ "$nofile" = unlimited ] && nofile=65536
  [ "$nofile" -gt 65536 ] && nofile=65536
  cat >"$PODMAN_DIR/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PODMAN_DIR/events.log"
tmp_dir = "$PODMAN_DIR/libpod"
image_copy_tmp_dir = "$PODMAN_DIR/tmp"
[network]
network_backend = "netavark"
network_config_dir = "$PODMAN_DIR/networks"
CONF
  cat >"$PODMAN_DIR/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$PODMAN_DIR/storage"
runroot = "$PODMAN_DIR/run"
CONF
  export CONTAINERS_CONF=$PODMAN_DIR/containers.conf
  export CONTAINERS_STORAGE_CONF=$PODMAN_DIR/storage.conf
  export TMPDIR=$PODMAN_DIR/tmp
}

# Free TCP port on 127.0.0.1 (the kernel picks one; nothing listens on it
# after this returns, and the tests use it at once).
free_port() {
  $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_http URL CODE SECONDS: poll until URL answers CODE.
wait_http() {
  local url=$1 want=$2 n=$(($3 * 10)) code=000
  for _ in $(seq 1 "$n"); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
    [ "$code" = "$want" ] && return 0
    sleep 0.1
  done
  echo "wait_http: $url answered $code, not $want" >&2
  return 1
}

ms() { date +%s%3N; }

# container_test_start: how docker-test.sh and k8s-test.sh begin. From the
# repo root, the image built (image.sh: a no-op after make container-image)
# and podman configured; T0 (start) and T1 (image ready), in ms, are left
# for the timings the tests log.
container_test_start() {
  BUILD=${BUILD:-build}
  cd "$ROOT"
  T0=$(ms)
  "$ROOT/deploy/container/image.sh"
  podman_env
  T1=$(ms)
}

# host_server_start DIR LOG: the host build ($BUILD/qatserve, one thread)
# serving DIR on a free port of 127.0.0.1, its log in LOG: sets hostpid and
# hport (the caller stops hostpid; its cleanup should too).
host_server_start() {
  "$ROOT/$BUILD/qatserve" --models "$1" --port 0 --threads 1 --quiet >"$2" 2>&1 &
  hostpid=$!
  hport=""
  for _ in $(seq 1 100); do
    hport=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$2")
    [ -n "$hport" ] && break
    sleep 0.05
  done
  [ -n "$hport" ] || { cat "$2"; die "host server did not start"; }
}
