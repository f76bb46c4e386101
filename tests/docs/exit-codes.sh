#!/usr/bin/env bash
# exit-codes.sh - qatserve's exit statuses as `qatserve --help` and
# docs/deploy.md state them: 0 after a drain, 1 when requests are still
# running at --drain-timeout, 2 on a bad option; --probe 0 on ready, else 1.
#   BUILD=build tests/docs/exit-codes.sh        (part of make docs-test)
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qs-exit.XXXXXX")
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
pass=0 fail=0
is() { if [ "$2" = "$3" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1: exit $2, expected $3" >&2; fi; }

mkdir "$tmp/models"
cp models/fashion-mnist.safetensors "$tmp/models/"
# start [env...]: a server on a free port; sets pid and port.
start() {
  : >"$tmp/log"
  env "$@" "$BUILD/qatserve" --models "$tmp/models" --port 0 --quiet --drain-timeout 1 >"$tmp/log" 2>&1 &
  pid=$!
  port=""
  for _ in $(seq 1 200); do
    port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/log")
    [ -n "$port" ] && return 0
    sleep 0.05
  done
  echo "FAIL: server did not start: $(cat "$tmp/log")" >&2
  exit 1
}

"$BUILD/qatserve" --port nope 2>/dev/null; is "bad option" $? 2
"$BUILD/qatserve" --no-such-flag 2>/dev/null; is "unknown flag" $? 2
"$BUILD/qatserve" --help >/dev/null; is "--help" $? 0

start
"$BUILD/qatserve" --probe --port "$port"; is "--probe on a ready server" $? 0
kill -TERM "$pid"; wait "$pid"; is "SIGTERM, nothing in flight" $? 0
"$BUILD/qatserve" --probe --port "$port"; is "--probe with no server" $? 1

start
kill -INT "$pid"; wait "$pid"; is "SIGINT, nothing in flight" $? 0

# A request that outlives --drain-timeout (the test-only delay holds it 3 s).
start QATSERVE_TEST_DELAY_MS=3000
curl -s -o /dev/null -X POST "localhost:$port/predict" -d '{"inputs":[[1,2]]}' &
cpid=$!
sleep 0.5
t0=$(date +%s%N)
kill -TERM "$pid"; wait "$pid"; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
is "SIGTERM with a request past --drain-timeout" $rc 1
echo "  (SIGTERM to exit with the request still running: $ms ms; --drain-timeout 1 s, the request needs 3 s)"
pid=""
wait "$cpid" 2>/dev/null
echo "exit-codes: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
