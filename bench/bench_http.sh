#!/usr/bin/env bash
# bench_http.sh - `make bench-http`: /predict requests/s, latency
# percentiles and server CPU per request under wrk, side by side in one run:
#   floor           libmicrohttpd reading the body and answering a constant
#                   (POST /floor of bench/peers/mhd_jansson.c): what any server
#                   on libmicrohttpd pays per request; CPU ratios are to it
#   qatserve-json   POST /predict, a real Fashion-MNIST image as JSON (batch 1),
#                   its numbers written with up to 17 significant digits as
#                   Python's json.dumps writes numpy float32 values (the default)
#   qatserve-json8  the same body with "baseline": false (int8 only)
#   qatserve-json6  the image with 6 significant digits (the short body)
#   qatserve-bin    the same image as raw float32, answered as raw float32
#   mhd-jansson     the bare libmicrohttpd + jansson peer (bench/peers/mhd_jansson.c)
#   flask-torch     Flask + gunicorn + PyTorch int8 (bench/peers/flask_torch.py),
#                   when python3-flask and python3-gunicorn are installed
# at 1, 16 and 64 connections.
# Every point is the median of REPEAT runs of DURATION seconds, the targets
# interleaved run by run so that bursts of other load hit them alike.
#   DURATION=5 REPEAT=3 CONNS="1 16 64" THREADS=2 BUILD=build bench/bench_http.sh
# Writes $BUILD/bench/http.csv, http.txt and, with gnuplot, http.png
# (requests/s and p99 against connections).
set -u
BUILD=${BUILD:-build}
DURATION=${DURATION:-5}
REPEAT=${REPEAT:-3}
CONNS=${CONNS:-"1 16 64"}
THREADS=${THREADS:-2}
PY=/usr/bin/python3
OUT=$BUILD/bench
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "bench-http: wrk is not installed (deploy/install-deps.sh --bench)"; exit 1; }
mkdir -p "$OUT"
tmp=$(cd "$(mktemp -d "${TMPDIR:-/tmp}/qs-bench.XXXXXX")" && pwd) # absolute: the Flask peer runs elsewhere
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

"$PY" deploy/wrk/mkbodies.py "$BUILD/wrk" || exit 1
# The same image as raw little-endian float32.
"$PY" -c '
import json, struct, sys
d = json.load(open(sys.argv[1]))
x = [v for r in d["inputs"] for v in r]
f32 = [struct.unpack("<f", struct.pack("<f", v))[0] for v in x]
open(sys.argv[2], "wb").write(struct.pack("<%df" % len(f32), *f32))
# The numbers as Python writes numpy float32 values widened to float64
# (json.dumps(x.astype(np.float64).tolist())): repr of the double, up to
# 17 significant digits, e.g. 0.003921568859368563.
row = "[" + ",".join(repr(v) for v in f32) + "]"
open(sys.argv[3], "w").write("{\"inputs\":[" + row + "]}")
open(sys.argv[4], "w").write("{\"baseline\":false,\"inputs\":[" + row + "]}")' \
  "$BUILD/wrk/predict_b1.json" "$BUILD/wrk/predict_b1.f32" "$BUILD/wrk/predict_b1_17.json" \
  "$BUILD/wrk/predict_b1_17_int8only.json" || exit 1

mkdir -p "$tmp/models"
model=models/fashion-mnist.safetensors
if [ -f "$model" ]; then
  cp "$model" "$tmp/models/"
else
  model=$tmp/random.safetensors
  "$BUILD/qstool" mkmodel "$model" 784,256,128,10 1 class >/dev/null || exit 1
  cp "$model" "$tmp/models/fashion-mnist.safetensors"
fi
echo "bench-http: model $model; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# start_qs NAME ARGS...: a qatserve on a free port; sets PORT_NAME and PID_NAME.
start_qs() {
  local name=$1 port=""
  shift
  "$BUILD/qatserve" --models "$tmp/models" --port 0 --quiet --conn-limit 4096 "$@" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 200); do
    port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/$name.log")
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "bench-http: $name did not start"; cat "$tmp/$name.log"; exit 1; }
  eval "PORT_$name=$port PID_$name=$!"
}
start_qs qs --threads "$THREADS"
"$BUILD/mhd_jansson" --port 0 --threads "$THREADS" >"$tmp/peer.log" 2>&1 &
pids+=($!)
PID_peer=$!
for _ in $(seq 1 100); do
  PORT_peer=$(sed -n 's/^listening on \([0-9]*\)/\1/p' "$tmp/peer.log")
  [ -n "$PORT_peer" ] && break
  sleep 0.05
done
[ -n "$PORT_peer" ] || { echo "bench-http: peer did not start"; exit 1; }
have_flask=0
if "$PY" -c 'import flask, gunicorn, torch' 2>/dev/null; then
  PORT_flask=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  (cd bench/peers && QS_MODEL="$tmp/models/fashion-mnist.safetensors" exec "$PY" -m gunicorn -w "$THREADS" \
    -b "127.0.0.1:$PORT_flask" --backlog 2048 flask_torch:app) >"$tmp/flask.log" 2>&1 &
  pids+=($!)
  PID_flask=$! # the gunicorn master (exec'd in the subshell); its workers are its children
  for _ in $(seq 1 200); do
    curl -s -o /dev/null --data-binary @"$BUILD/wrk/predict_b1.json" -H 'Content-Type: application/json' \
      "http://127.0.0.1:$PORT_flask/predict" && break
    sleep 0.1
  done
  curl -sf -o /dev/null --data-binary @"$BUILD/wrk/predict_b1.json" -H 'Content-Type: application/json' \
    "http://127.0.0.1:$PORT_flask/predict" && have_flask=1
  [ $have_flask = 1 ] || { echo "bench-http: Flask peer did not answer; skipped"; tail -5 "$tmp/flask.log"; }
else
  echo "bench-http: python3-flask / python3-gunicorn not installed: Flask peer skipped (deploy/install-deps.sh --bench)"
fi

# Sanity: every target answers 200 before it is timed.
code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$BUILD/wrk/predict_b1.f32" \
  -H 'Content-Type: application/octet-stream' -H 'Accept: application/octet-stream' \
  "http://127.0.0.1:$PORT_qs/predict?model=fashion-mnist")
[ "$code" = 200 ] || { echo "bench-http: binary /predict answered $code"; exit 1; }

# cpu_ticks PID...: user+system CPU ticks of the processes and their children
# (gunicorn's workers), so that the server's own CPU per request can be
# reported: the other processes on the machine disturb it far less than req/s.
cpu_ticks() {
  local t=0 p
  for p in "$@" $(for q in "$@"; do pgrep -P "$q"; done); do
    [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
  done
  echo "$t"
}
tck=$(getconf CLK_TCK)
# run NAME CONNS URL BODY CTYPE ACCEPT PID: one wrk run, appends
# "req/s p50 p90 p99 (ms) cpu_us_per_request" to $tmp/NAME.CONNS.
run() {
  local t=2 out c0 c1
  [ "$2" -lt 2 ] && t=1
  c0=$(cpu_ticks "$7")
  out=$(BODY="$4" CTYPE="$5" ACCEPT="$6" wrk -t$t -c"$2" -d"${DURATION}s" --timeout 5s \
    -s bench/wrk_post.lua "$3" 2>&1 | grep '^RESULT')
  c1=$(cpu_ticks "$7")
  if ! kill -0 "$7" 2>/dev/null; then
    echo "bench-http: the server behind $1 died; its log:" >&2
    tail -n 20 "$tmp"/*.log >&2
    exit 1
  fi
  [ -n "$out" ] || { echo "bench-http: wrk failed for $1" >&2; return; }
  awk -v o="$out" -v n="$1" -v c0="$c0" -v c1="$c1" -v tck="$tck" -v d="$DURATION" 'BEGIN {
    k = split(o, f, /[ =]/); for (i = 2; i < k; i += 2) v[f[i]] = f[i + 1]
    if (v["non2xx"] + v["errors"] > 0) printf "bench-http: %s: non-2xx or errors: %s\n", n, o > "/dev/stderr"
    printf "%s %s %s %s %.1f\n", v["req_s"], v["p50_ms"], v["p90_ms"], v["p99_ms"],
      (c1 - c0) / tck * 1e6 / (v["req_s"] * d + 1e-9) }' >>"$tmp/$1.$2"
}
J=application/json
B=application/octet-stream
targets="floor qatserve-json qatserve-json8 qatserve-bin qatserve-json6 mhd-jansson"
[ $have_flask = 1 ] && targets="$targets flask-torch"
Q=$BUILD/wrk/predict_b1_17.json
for c in $CONNS; do
  for rep in $(seq 1 "$REPEAT"); do
    run floor "$c" "http://127.0.0.1:$PORT_peer/floor" "$Q" $J "" "$PID_peer"
    run qatserve-json "$c" "http://127.0.0.1:$PORT_qs/predict" "$Q" $J "" "$PID_qs"
    run qatserve-json8 "$c" "http://127.0.0.1:$PORT_qs/predict" "$BUILD/wrk/predict_b1_17_int8only.json" $J "" "$PID_qs"
    run qatserve-bin "$c" "http://127.0.0.1:$PORT_qs/predict?model=fashion-mnist" "$BUILD/wrk/predict_b1.f32" $B $B "$PID_qs"
    run qatserve-json6 "$c" "http://127.0.0.1:$PORT_qs/predict" "$BUILD/wrk/predict_b1.json" $J "" "$PID_qs"
    run mhd-jansson "$c" "http://127.0.0.1:$PORT_peer/predict" "$Q" $J "" "$PID_peer"
    [ $have_flask = 1 ] && run flask-torch "$c" "http://127.0.0.1:$PORT_flask/predict" "$Q" $J "" "$PID_flask"
  done
done

med() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
col() { cut -d' ' -f"$2" "$1" 2>/dev/null | med; }
echo "target,conns,req_s,p50_ms,p90_ms,p99_ms,cpu_us_per_req,x_floor" >"$OUT/http.csv"
{
  echo "# /predict, batch 1 (one Fashion-MNIST image), fp32 baseline on unless said; wrk -t2 (-t1 at 1 connection), ${DURATION}s runs,"
  echo "# median of $REPEAT interleaved runs; $THREADS server threads/workers each; $(nproc) shared cores, load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# JSON bodies: numbers with up to 17 significant digits (json.dumps of numpy float32 as float64), except"
  echo "# qatserve-json6 (6 digits); qatserve-json8: \"baseline\": false; floor: libmicrohttpd reading the body, constant answer"
  echo "# cpu us/req: the server's own CPU time (user+system, with gunicorn's workers) per request; x floor: that over the floor's"
  printf '%-15s %6s %10s %9s %9s %9s %12s %8s\n' target conns "req/s" "p50 ms" "p90 ms" "p99 ms" "cpu us/req" "x floor"
  for name in $targets; do
    for c in $CONNS; do
      f="$tmp/$name.$c"
      [ -s "$f" ] || continue
      line="$(col "$f" 1) $(col "$f" 2) $(col "$f" 3) $(col "$f" 4) $(col "$f" 5)"
      fl=$(col "$tmp/floor.$c" 5)
      x=$(awk -v a="$(col "$f" 5)" -v b="$fl" 'BEGIN { printf("%.2f", (b > 0) ? a / b : 0) }')
      # shellcheck disable=SC2086
      printf '%-15s %6s %10s %9s %9s %9s %12s %8s\n' "$name" "$c" $line "$x"
      echo "$name,$c,${line// /,},$x" >>"$OUT/http.csv"
    done
  done
  for c in $CONNS; do
    fl=$(col "$tmp/floor.$c" 5)
    awk -v c="$c" -v fl="$fl" -v j="$(col "$tmp/qatserve-json.$c" 5)" -v b="$(col "$tmp/qatserve-bin.$c" 5)" \
      -v j8="$(col "$tmp/qatserve-json8.$c" 5)" -v p99="$(col "$tmp/qatserve-json.$c" 4)" \
      -v q="$(col "$tmp/qatserve-json.$c" 1)" -v p="$(col "$tmp/mhd-jansson.$c" 1)" 'function v(x, t) {
        return sprintf("%.2fx (target <= %.1fx: %s)", x / fl, t, x / fl <= t ? "met" : "MISSED") }
      BEGIN {
        printf "at %2s connections: CPU/request over the floor: JSON+baseline %s, binary+baseline %s, JSON int8 only %s\n", c, v(j, 2.5), v(b, 2.0), v(j8, 1.8)
        printf "                   req/s JSON / mhd-jansson %.2fx", q / p
        if (c == 64) printf "; JSON p99 %s ms (target <= 5: %s)", p99, p99 <= 5 ? "met" : "MISSED"
        printf "\n" }'
  done
} | tee "$OUT/http.txt"

if command -v gnuplot >/dev/null; then
  gnuplot -e "csv='$OUT/http.csv'; out='$OUT/http.png'" bench/plot_http.gp && echo "wrote $OUT/http.png"
fi
