#!/usr/bin/env bash
# clean.sh - `make container-clean`: remove everything the container tests
# keep in build/podman (containers, pods, volumes, images, the base image
# tarball) and the few files podman writes in fixed places when they were
# not there before the first test (recorded in build/podman/created).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PODMAN_DIR=${PODMAN_DIR:-$ROOT/build/podman}
[ -d "$PODMAN_DIR" ] || exit 0
[ "$(id -u)" = 0 ] || { echo "container-clean: $PODMAN_DIR is root's: run as root" >&2; exit 1; }
if [ -f "$PODMAN_DIR/containers.conf" ] && command -v podman >/dev/null; then
  export CONTAINERS_CONF=$PODMAN_DIR/containers.conf CONTAINERS_STORAGE_CONF=$PODMAN_DIR/storage.conf
  podman system reset -f >/dev/null 2>&1 || true
fi
if [ -f "$PODMAN_DIR/created" ]; then
  while IFS= read -r p; do
    case "$p" in
      */blob-info-cache-v1.boltdb) rm -f "$p" ;;
      *) rmdir "$p" 2>/dev/null || true ;;
    esac
  done < <(sort -r "$PODMAN_DIR/created")
fi
rm -rf "$PODMAN_DIR"
echo "container-clean: removed $PODMAN_DIR"
