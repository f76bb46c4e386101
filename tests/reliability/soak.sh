#!/usr/bin/env bash
# soak.sh - `make soak`: SOAK_SECONDS (600) of wrk against one server
# (batch 1 on 16 connections and batch 32 on 4, in parallel), with a model
# replacement and a handful of bad requests every 15 s. Resident memory and
# open file descriptors are sampled every 30 s, after a 10 s warm-up; both
# must end flat: RSS within +16 MB of the warm start, fds within +4.
#   SOAK_SECONDS=600 BUILD=build tests/reliability/soak.sh
set -u
BUILD=${BUILD:-build}
SECS=${SOAK_SECONDS:-600}
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
command -v wrk >/dev/null || { echo "soak: wrk missing (deploy/install-deps.sh --bench)"; exit 1; }
. tests/lib/server.sh # the shell-test harness: temp dir, server on a free port, cleanup
qs_init soak
tmp=$QS_TMP
qs_on_exit 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done'
SPID=""
pids=()

$PY deploy/wrk/mkbodies.py "$tmp/wrk" >/dev/null || exit 1
mkdir -p "$tmp/models" "$tmp/versions"
"$BUILD/qstool" mkmodel "$tmp/versions/A.safetensors" 784,256,10 1 class >/dev/null || exit 1
"$BUILD/qstool" mkmodel "$tmp/versions/B.safetensors" 784,256,10 2 class >/dev/null || exit 1
cp "$tmp/versions/A.safetensors" "$tmp/models/fm.safetensors"
qs_start "$tmp/server.log" --models "$tmp/models" --quiet --conn-limit 4096
SPID=$QS_PID
PORT=$QS_PORT
[ -n "$PORT" ] || { echo "soak: server did not start"; cat "$tmp/server.log"; exit 1; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$SPID/status"; }
fds() { ls "/proc/$SPID/fd" | wc -l; }

URL="http://127.0.0.1:$PORT/predict"
BODY="$tmp/wrk/predict_b1.json" wrk -t1 -c16 -d"${SECS}s" --timeout 5s -s deploy/wrk/predict.lua "$URL" \
  >"$tmp/wrk1.txt" 2>&1 &
pids+=($!)
W1=$!
BODY="$tmp/wrk/predict_b32.json" wrk -t1 -c4 -d"${SECS}s" --timeout 5s -s deploy/wrk/predict.lua "$URL" \
  >"$tmp/wrk32.txt" 2>&1 &
pids+=($!)
W32=$!

sleep 10
rss0=$(rss)
fd0=$(fds)
echo "soak: ${SECS} s; after warm-up: RSS ${rss0} kB, ${fd0} fds"
t=10
i=0
while [ $t -lt $((SECS - 5)) ]; do
  sleep 15
  t=$((t + 15))
  i=$((i + 1))
  v=A; [ $((i % 2)) -eq 1 ] && v=B
  cp "$tmp/versions/$v.safetensors" "$tmp/models/.fm.tmp" && mv -f "$tmp/models/.fm.tmp" "$tmp/models/fm.safetensors"
  for b in '{"inputs":[[1,2]]}' '{"inputs":[[NaN]]}' 'not json' '{"model":"nope","inputs":[[1]]}'; do
    curl -s -o /dev/null --max-time 5 --data-binary "$b" "$URL"
  done
  [ $((t % 30)) -eq 10 ] && echo "soak: t=${t}s RSS $(rss) kB, $(fds) fds"
done
wait "$W1" "$W32"
sleep 1
rss1=$(rss)
fd1=$(fds)
r1=$(grep '^RESULT' "$tmp/wrk1.txt")
r32=$(grep '^RESULT' "$tmp/wrk32.txt")
n1=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$tmp/wrk1.txt")
n32=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$tmp/wrk32.txt")
echo "soak: batch 1: $n1 requests, $r1"
echo "soak: batch 32: $n32 requests, $r32"
echo "soak: start RSS ${rss0} kB, ${fd0} fds; end RSS ${rss1} kB, ${fd1} fds; $(grep -c reloaded "$tmp/server.log") reloads"
pass=0
fail=0
check() { if eval "$2"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi; }
check "batch-1 load had no non-2xx and no errors" 'echo "$r1" | grep -q "non2xx=0 errors=0"'
check "batch-32 load had no non-2xx and no errors" 'echo "$r32" | grep -q "non2xx=0 errors=0"'
check "RSS flat (+16 MB at most)" '[ $((rss1 - rss0)) -le 16384 ]'
check "fds flat (+4 at most)" '[ $((fd1 - fd0)) -le 4 ]'
check "server alive" 'kill -0 $SPID'
echo "soak: $pass passed, $fail failed"
[ $fail -eq 0 ]
