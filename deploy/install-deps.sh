#!/bin/sh
# Installs the Debian packages that building, testing and serving qatserve need.
# Idempotent: asks dpkg first and only calls apt-get for what is missing, so a
# machine that already has everything hears nothing from it.
#   deploy/install-deps.sh            build + test + run
#   deploy/install-deps.sh --bench    also the benchmark peers (oneDNN, wrk, gnuplot, Flask + gunicorn + PyTorch)
#   deploy/install-deps.sh --torch    also PyTorch (for the import tests)
#   deploy/install-deps.sh --onnx     also python3-onnx and node (ONNX import/export tests)
#   deploy/install-deps.sh --fuzz     also clang and libFuzzer
#   deploy/install-deps.sh --browser  also chromium and node (make browser-test)
#   deploy/install-deps.sh --infra    also podman, Prometheus, HAProxy, wrk and the Kubernetes
#                                     client models (docker-test, k8s-test, prometheus-test, lb-test)
set -eu

pkgs="build-essential pkg-config libmicrohttpd-dev libjansson-dev libuv1-dev check
libopenblas-dev zlib1g-dev curl dataset-fashion-mnist python3-yaml gnuplot-nox
libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler python3-grpcio python3-grpc-tools"
for arg in "$@"; do
  case "$arg" in
    --bench) pkgs="$pkgs libdnnl-dev wrk nghttp2-client gnuplot-nox python3-flask python3-gunicorn python3-torch python3-numpy python3-onnx nodejs"
             command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm" ;;
    --torch) pkgs="$pkgs python3-torch python3-numpy" ;;
    --onnx)  pkgs="$pkgs python3-onnx python3-numpy nodejs"
             command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm" ;;
    --fuzz)  pkgs="$pkgs clang-14 libclang-rt-14-dev" ;;
    # npm only where no npm is there yet: nodesource's nodejs bundles it,
    # and Debian's npm package would pull Debian's older nodejs over it.
    --browser) pkgs="$pkgs chromium nodejs"
               command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm" ;;
    # runc (not crun, which refuses this hybrid cgroup layout) named so that
    # podman's "crun | runc" dependency takes it; catatonit for kube play.
    --infra) pkgs="$pkgs podman runc netavark catatonit debootstrap python3-kubernetes prometheus haproxy wrk" ;;
    --all)   pkgs="$pkgs podman runc netavark catatonit debootstrap python3-kubernetes prometheus haproxy libdnnl-dev wrk nghttp2-client gnuplot-nox python3-flask python3-gunicorn python3-torch python3-numpy python3-onnx clang-14 libclang-rt-14-dev chromium nodejs" ;;
    *) echo "install-deps.sh: unknown option '$arg' (use --bench, --torch, --onnx, --fuzz, --browser, --infra or --all)" >&2; exit 2 ;;
  esac
done

missing=""
for p in $pkgs; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps.sh: need root (or sudo) to install:$missing" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps.sh: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
