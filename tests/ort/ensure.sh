#!/bin/sh
# ensure.sh - onnxruntime-node as package-lock.json pins it, in tests/ort.
# npm ci only when the installed version is not the pinned one; never runs
# install scripts (the CPU library ships inside the package).
set -eu
cd "$(dirname "$0")"
command -v node >/dev/null 2>&1 || { echo "tests/ort: node is missing (deploy/install-deps.sh --onnx)" >&2; exit 1; }
want=$(sed -n 's/.*"onnxruntime-node": *"\([^"]*\)".*/\1/p' package.json | head -1)
have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' node_modules/onnxruntime-node/package.json 2>/dev/null | head -1)
if [ "$want" != "$have" ]; then
  command -v npm >/dev/null 2>&1 || { echo "tests/ort: npm is missing (deploy/install-deps.sh --onnx)" >&2; exit 1; }
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2 ||
    { echo "tests/ort: npm ci failed" >&2; exit 1; }
fi
