#!/usr/bin/env bash
# loadtest.sh - `make loadtest`: qatserve under wrk with real Fashion-MNIST
# bodies (batch 1 and 32) at a few connection counts, then the bare
# libmicrohttpd + jansson peer (bench/peers/mhd_jansson.c) with the same
# batch-1 body in the same run. Bounded: DURATION seconds per point.
#   DURATION=5 CONNS="16 64" THREADS=2 REPEAT=3 BUILD=build deploy/wrk/loadtest.sh
# Each point is the median of REPEAT runs, qatserve and the peer interleaved.
# Model: the first models/*.safetensors if there is one, else a random
# 784-256-10 model from qstool (the speed of the server, not its accuracy).
set -u
BUILD=${BUILD:-build}
DURATION=${DURATION:-5}
CONNS=${CONNS:-"16 64"}
THREADS=${THREADS:-2}
REPEAT=${REPEAT:-3}
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || { echo "loadtest: wrk is not installed (deploy/install-deps.sh --bench)"; exit 1; }
. tests/lib/server.sh # the shell-test harness: temp dir, server on a free port, cleanup
qs_init load
tmp=$QS_TMP
pids=()

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

qs_start "$tmp/server.log" --models "$tmp/models" --threads "$THREADS" --quiet --conn-limit 4096 || exit 1
pids+=("$QS_PID")
port=$QS_PORT
code=$(curl -s -o "$tmp/check.json" -w '%{http_code}' --data-binary @"$BUILD/wrk/predict_b1.json" "http://127.0.0.1:$port/predict")
[ "$code" = 200 ] || { echo "loadtest: /predict answered $code: $(cat "$tmp/check.json")"; exit 1; }
echo "loadtest: one request: $(head -c 400 "$tmp/check.json")"

"$BUILD/mhd_jansson" --port 0 --threads "$THREADS" >"$tmp/peer.log" 2>&1 &
pids+=($!)
qs_track "$!"
pport=$(qs_port_from_log "$tmp/peer.log" "$!" 's/^listening on \([0-9]*\)/\1/p') ||
  { echo "loadtest: peer did not start"; exit 1; }

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
# run NAME PID URL BODY CONNS: one wrk run; appends "req/s p50 p99 cpu_us"
# to $tmp/NAME.CONNS (cpu_us: the server's CPU time per request, which the
# other processes on the machine disturb far less than req/s).
run() {
  local c0 c1 out
  c0=$(cpu_ticks "$2")
  out=$(BODY="$4" wrk -t2 -c"$5" -d"${DURATION}s" --timeout 5s -s deploy/wrk/predict.lua "$3" 2>&1 | grep '^RESULT')
  c1=$(cpu_ticks "$2")
  [ -n "$out" ] || { echo "loadtest: wrk failed for $1" >&2; return; }
  awk -v o="$out" -v c0="$c0" -v c1="$c1" -v t="$tck" -v d="$DURATION" 'BEGIN {
    n = split(o, f, /[ =]/); for (i = 2; i < n; i += 2) v[f[i]] = f[i + 1]
    if (v["non2xx"] + v["errors"] > 0) printf "loadtest: %s non-2xx or errors: %s\n", "'"$1"'", o > "/dev/stderr"
    printf "%s %s %s %.1f\n", v["req_s"], v["p50_ms"], v["p99_ms"], (c1 - c0) / t * 1e6 / (v["req_s"] * d) }' >>"$tmp/$1.$5"
}
qpid=${pids[0]}
ppid_=${pids[1]}
for c in $CONNS; do
  # Interleaved repeats, so a burst of other load hits both sides alike.
  for rep in $(seq 1 "$REPEAT"); do
    run qatserve-b1 "$qpid" "http://127.0.0.1:$port/predict" "$BUILD/wrk/predict_b1.json" "$c"
    run peer-b1 "$ppid_" "http://127.0.0.1:$pport/predict" "$BUILD/wrk/predict_b1.json" "$c"
    run qatserve-b1-int8only "$qpid" "http://127.0.0.1:$port/predict" "$BUILD/wrk/predict_b1_int8only.json" "$c"
  done
  run qatserve-b32 "$qpid" "http://127.0.0.1:$port/predict" "$BUILD/wrk/predict_b32.json" "$c"
done
# median of each column over the repeats
med() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
printf '%-22s %6s %10s %9s %9s %12s\n' target conns "req/s" "p50 ms" "p99 ms" "server cpu us/req"
for name in qatserve-b1 qatserve-b1-int8only qatserve-b32 peer-b1; do
  for c in $CONNS; do
    f="$tmp/$name.$c"
    [ -s "$f" ] || continue
    printf '%-22s %6s %10s %9s %9s %12s\n' "$name" "$c" "$(cut -d' ' -f1 "$f" | med)" \
      "$(cut -d' ' -f2 "$f" | med)" "$(cut -d' ' -f3 "$f" | med)" "$(cut -d' ' -f4 "$f" | med)"
  done
done
for c in $CONNS; do
  a=$(cut -d' ' -f1 "$tmp/qatserve-b1.$c" 2>/dev/null | med)
  b=$(cut -d' ' -f1 "$tmp/peer-b1.$c" 2>/dev/null | med)
  ac=$(cut -d' ' -f4 "$tmp/qatserve-b1.$c" 2>/dev/null | med)
  bc=$(cut -d' ' -f4 "$tmp/peer-b1.$c" 2>/dev/null | med)
  awk -v a="$a" -v b="$b" -v ac="$ac" -v bc="$bc" -v c="$c" 'BEGIN { if (b > 0 && ac > 0)
    printf "qatserve / peer at %s connections (batch 1, with fp32 baseline): %.2fx req/s, %.2fx less server CPU per request\n", c, a / b, bc / ac }'
done
echo "loadtest: $(nproc) cores, wrk -t2, $THREADS server threads, median of $REPEAT x ${DURATION}s per point (wrk shares the cores)"
