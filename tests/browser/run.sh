#!/usr/bin/env bash
# run.sh - the browser test: Debian's chromium, driven by playwright-core
# (pinned in package-lock.json), against a real qatserve on a free loopback
# port. Called by `make browser-test` with BUILD set.
#   - skips (exit 0, says why) only when /usr/bin/chromium is not there
#   - never lets anything download a browser
#   - screenshots go to $BUILD/browser/
#   - BROWSER_MODEL=FILE serves that model (default: models/fashion-mnist.safetensors)
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
out="$BUILD/browser"

if [ ! -x "$CHROMIUM" ]; then
  echo "browser-test: SKIPPED: $CHROMIUM is not installed (deploy/install-deps.sh --browser installs it)"
  exit 0
fi
command -v node >/dev/null 2>&1 || { echo "browser-test: node is missing (deploy/install-deps.sh --browser)" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "browser-test: npm is missing (deploy/install-deps.sh --browser)" >&2; exit 1; }
[ -x "$BUILD/qatserve" ] || { echo "browser-test: $BUILD/qatserve is not built" >&2; exit 1; }

# playwright-core only; PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD keeps any install
# step from fetching a browser build of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 PLAYWRIGHT_BROWSERS_PATH=0
want=$(sed -n 's/.*"playwright-core": *"\([^"]*\)".*/\1/p' tests/browser/package.json | head -1)
have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' tests/browser/node_modules/playwright-core/package.json 2>/dev/null | head -1)
if [ "$want" != "$have" ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) ||
    { echo "browser-test: npm ci failed in tests/browser" >&2; exit 1; }
fi

. tests/lib/server.sh # the shell-test harness: temp dir, server on a free port, cleanup
qs_init browser
work=$QS_TMP
pid=""
qs_on_exit '[ -n "$pid" ] && qs_stop "$pid" TERM' # a graceful stop, as before
mkdir -p "$work/models" "$out"

# BROWSER_MODEL, else the shipped Fashion-MNIST model when there is one,
# else a random test model with labels (tests/integration/qstool.c).
model=${BROWSER_MODEL:-models/fashion-mnist.safetensors}
if [ -f "$model" ]; then
  cp "$model" "$work/models/fashion-mnist.safetensors"
else
  [ -x "$BUILD/qstool" ] || { echo "browser-test: $BUILD/qstool is not built" >&2; exit 1; }
  "$BUILD/qstool" mkmodel "$work/models/fashion-mnist.safetensors" 784,64,10 7 item >/dev/null
fi
# A second model file to copy over the first: the page must show the reload.
"$BUILD/qstool" mkmodel "$work/reload.safetensors" 784,32,10 11 item >/dev/null 2>&1 ||
  cp "$work/models/fashion-mnist.safetensors" "$work/reload.safetensors"

if ! qs_start "$work/server.log" --models "$work/models" --threads 2 --quiet; then
  echo "browser-test: the server did not start" >&2
  exit 1
fi
pid=$QS_PID
port=$QS_PORT

rc=0
QS_URL="http://127.0.0.1:$port" QS_MODELS="$work/models" QS_RELOAD="$work/reload.safetensors" \
  QS_OUT="$out" QS_PROFILE="$work/profile" CHROMIUM="$CHROMIUM" \
  node tests/browser/test.js || rc=$?
if [ $rc -ne 0 ]; then
  echo "browser-test: server log:" >&2
  tail -20 "$work/server.log" >&2
fi
exit $rc
