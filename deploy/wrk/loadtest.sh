#!/usr/bin/env bash
# loadtest.sh - `make loadtest`: qatserve under wrk with real Fashion-MNIST
# bodies (batch 1 and 32) at a few connection counts, then the bare
# libmicrohttpd + jansson peer (bench/peers/mhd_jansson.c) with the same
# batch-1 body in the same run. Bounded: DURATION seconds per point.
#   DURATION=5 CONNS="16 64" THREADS=2 BUILD=build deploy/wrk/loadtest.sh
# Model: the first models/*.safetensors if there is one, else a random
# 784-256-10 model from qstool (the speed of the server, not its accuracy).
set -u
BUILD=${BUILD:-build}
DURATION=${DURATION:-5}
CONNS=${CONNS:-"16 64"}
THREADS=${THREADS:-2}
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || { echo "loadtest: wrk is not installed (deploy/install-deps.sh --bench)"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qs-load.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

/usr/bin/python3 deploy/wrk/mkbodies.py "$BUILD/wrk" || exit 1
mkdir -p "$tmp/models"
shipped=$(ls models/*.safetensors 2>/dev/null | head -n 1)
if [ -n "$shipped" ]; then
  cp "$shipped" "$tmp/models/"
  echo "loadtest: model $shipped"
else
  "$BUILD/qstool" mkmodel "$tmp/models/random.safetensors" 784,256,10 1 class || exit 1
  echo "loadtest: no models/*.safetensors; random 784-256-10 model"
fi

"$BUILD/qatserve" --models "$tmp/models" --port 0 --threads "$THREADS" --quiet --conn-limit 4096 \
  >"$tmp/server.log" 2>&1 &
pids+=($!)
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/server.log")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { cat "$tmp/server.log"; exit 1; }
code=$(curl -s -o "$tmp/check.json" -w '%{http_code}' --data-binary @"$BUILD/wrk/predict_b1.json" "http://127.0.0.1:$port/predict")
[ "$code" = 200 ] || { echo "loadtest: /predict answered $code: $(cat "$tmp/check.json")"; exit 1; }
echo "loadtest: one request: $(head -c 400 "$tmp/check.json")"

"$BUILD/mhd_jansson" --port 0 --threads "$THREADS" >"$tmp/peer.log" 2>&1 &
pids+=($!)
pport=""
for _ in $(seq 1 100); do
  pport=$(sed -n 's/^listening on \([0-9]*\)/\1/p' "$tmp/peer.log")
  [ -n "$pport" ] && break
  sleep 0.05
done
[ -n "$pport" ] || { echo "loadtest: peer did not start"; exit 1; }

# run NAME URL BODY CONNS -> one table row; req/s kept in $tmp/NAME.CONNS
run() {
  local out
  out=$(BODY="$3" wrk -t2 -c"$4" -d"${DURATION}s" --timeout 5s -s deploy/wrk/predict.lua "$2" 2>&1 | grep '^RESULT')
  local rs p50 p99 bad err
  rs=$(sed 's/.*req_s=\([^ ]*\).*/\1/' <<<"$out")
  p50=$(sed 's/.*p50_ms=\([^ ]*\).*/\1/' <<<"$out")
  p99=$(sed 's/.*p99_ms=\([^ ]*\).*/\1/' <<<"$out")
  bad=$(sed 's/.*non2xx=\([^ ]*\).*/\1/' <<<"$out")
  err=$(sed 's/.*errors=\([^ ]*\).*/\1/' <<<"$out")
  printf '%-22s %6s %11s %9s %9s %7s %7s\n' "$1" "$4" "$rs" "$p50" "$p99" "$bad" "$err"
  echo "$rs" >"$tmp/$1.$4"
}
printf '%-22s %6s %11s %9s %9s %7s %7s\n' target conns "req/s" "p50 ms" "p99 ms" non2xx errors
for c in $CONNS; do run qatserve-b1 "http://127.0.0.1:$port/predict" "$BUILD/wrk/predict_b1.json" "$c"; done
for c in $CONNS; do run qatserve-b32 "http://127.0.0.1:$port/predict" "$BUILD/wrk/predict_b32.json" "$c"; done
for c in $CONNS; do run peer-mhd-jansson-b1 "http://127.0.0.1:$pport/predict" "$BUILD/wrk/predict_b1.json" "$c"; done
for c in $CONNS; do
  a=$(cat "$tmp/qatserve-b1.$c" 2>/dev/null)
  b=$(cat "$tmp/peer-mhd-jansson-b1.$c" 2>/dev/null)
  [ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" -v c="$c" \
    'BEGIN { if (b > 0) printf "qatserve / peer at %s connections (batch 1): %.2fx\n", c, a / b }'
done
echo "loadtest: $(nproc) cores, wrk -t2, $THREADS server threads, ${DURATION}s per point (wrk shares the cores)"
