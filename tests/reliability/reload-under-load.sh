#!/usr/bin/env bash
# reload-under-load.sh - wrk posts a real Fashion-MNIST image for DURATION s
# while the model file is replaced REPLACEMENTS times: atomic renames of two
# models whose answers differ, plus corrupt versions (truncated, garbage,
# written in place half at a time). Passes when:
#   - wrk saw no non-2xx answer and no socket error;
#   - every answer a sampling client got (hundreds) is exactly model A's or
#     model B's outputs for that image (never a mix, never anything else),
#     and it saw both;
#   - the server counted reloads and refusals, and still answers.
#   DURATION=30 REPLACEMENTS=50 BUILD=build tests/reliability/reload-under-load.sh
set -u
BUILD=${BUILD:-build}
DURATION=${DURATION:-30}
REPLACEMENTS=${REPLACEMENTS:-50}
CONNS=${CONNS:-16}
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
command -v wrk >/dev/null || { echo "reload-test: wrk missing (deploy/install-deps.sh --bench)"; exit 1; }
. tests/lib/server.sh # the shell-test harness: temp dir, server on a free port, cleanup
qs_init reload
tmp=$QS_TMP
qs_on_exit 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done'
SPID=""
pids=()

$PY deploy/wrk/mkbodies.py "$tmp/wrk" >/dev/null || exit 1
# The image's numbers as qstool reads them, and both models' answers.
$PY - "$tmp/wrk/predict_b1.json" "$tmp/row.txt" <<'EOF'
import json, re, sys
body = open(sys.argv[1]).read()
# the number text exactly as sent
row = re.search(r'"inputs":\[\[([^\]]*)\]\]', body).group(1).split(",")
open(sys.argv[2], "w").write(" ".join(row) + "\n")
EOF
mkdir -p "$tmp/models" "$tmp/versions"
"$BUILD/qstool" mkmodel "$tmp/versions/A.safetensors" 784,64,10 101 class >/dev/null || exit 1
"$BUILD/qstool" mkmodel "$tmp/versions/B.safetensors" 784,64,10 202 class >/dev/null || exit 1
"$BUILD/qstool" expect "$tmp/versions/A.safetensors" "$tmp/row.txt" | head -n 1 >"$tmp/A.txt"
"$BUILD/qstool" expect "$tmp/versions/B.safetensors" "$tmp/row.txt" | head -n 1 >"$tmp/B.txt"
cmp -s "$tmp/A.txt" "$tmp/B.txt" && { echo "reload-test: models A and B answer alike"; exit 1; }
cp "$tmp/versions/A.safetensors" "$tmp/models/fm.safetensors"

qs_start "$tmp/server.log" --models "$tmp/models" --quiet --conn-limit 4096
SPID=$QS_PID
PORT=$QS_PORT
[ -n "$PORT" ] || { echo "reload-test: server did not start"; cat "$tmp/server.log"; exit 1; }

# Load.
BODY="$tmp/wrk/predict_b1.json" wrk -t2 -c"$CONNS" -d"${DURATION}s" --timeout 5s \
  -s deploy/wrk/predict.lua "http://127.0.0.1:$PORT/predict" >"$tmp/wrk.txt" 2>&1 &
WPID=$!
pids+=($WPID)
# Sampler: one keep-alive client checking every answer.
$PY - "$PORT" "$tmp/wrk/predict_b1.json" "$tmp/A.txt" "$tmp/B.txt" "$DURATION" >"$tmp/sampler.txt" 2>&1 <<'EOF' &
import http.client, json, sys, time
port, body = int(sys.argv[1]), open(sys.argv[2], "rb").read()
A, B = open(sys.argv[3]).read().split(), open(sys.argv[4]).read().split()
end = time.monotonic() + float(sys.argv[5]) - 1
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
n = {"A": 0, "B": 0, "bad": 0, "err": 0}
versions = set()
while time.monotonic() < end:
    try:
        c.request("POST", "/predict", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        raw = r.read()
    except Exception as e:
        n["err"] += 1
        print("error:", repr(e))
        c.close()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        continue
    if r.status != 200:
        n["bad"] += 1
        print("status", r.status, raw[:200])
        continue
    s = json.loads(raw, parse_float=str, parse_int=str)
    out = s["outputs"][0]
    versions.add(s.get("version"))
    if out == A:
        n["A"] += 1
    elif out == B:
        n["B"] += 1
    else:
        n["bad"] += 1
        print("answer from neither model:", out[:4])
    time.sleep(0.01)
print("SAMPLER A=%d B=%d bad=%d err=%d versions=%d" % (n["A"], n["B"], n["bad"], n["err"], len(versions)))
EOF
pids+=($!)
SAMPLER=$!

# Replacements, spread over the run: every 5th is corrupt (in turn a
# truncated copy, garbage, a file written in place in two halves with a
# pause between), then a good one follows.
sleep 1
gap=$(awk -v d="$DURATION" -v n="$REPLACEMENTS" 'BEGIN { printf "%.3f", (d - 3) / n }')
corrupt=0
good=0
for i in $(seq 1 "$REPLACEMENTS"); do
  if [ $((i % 5)) -eq 0 ]; then
    corrupt=$((corrupt + 1))
    case $((corrupt % 3)) in
      0) head -c 1000 "$tmp/versions/A.safetensors" >"$tmp/models/.fm.tmp"
         mv -f "$tmp/models/.fm.tmp" "$tmp/models/fm.safetensors" ;;
      1) head -c 5000 /dev/urandom >"$tmp/models/.fm.tmp"
         mv -f "$tmp/models/.fm.tmp" "$tmp/models/fm.safetensors" ;;
      2) src="$tmp/versions/B.safetensors"; sz=$(stat -c %s "$src")
         head -c $((sz / 2)) "$src" >"$tmp/models/fm.safetensors"   # in place: half
         sleep 0.2
         tail -c +$((sz / 2 + 1)) "$src" >>"$tmp/models/fm.safetensors" ;;  # then the rest
    esac
  else
    good=$((good + 1))
    v=A; [ $((good % 2)) -eq 1 ] && v=B
    cp "$tmp/versions/$v.safetensors" "$tmp/models/.fm.tmp"
    mv -f "$tmp/models/.fm.tmp" "$tmp/models/fm.safetensors"
  fi
  sleep "$gap"
done
# Leave a good version in place for the final check.
cp "$tmp/versions/A.safetensors" "$tmp/models/.fm.tmp" && mv -f "$tmp/models/.fm.tmp" "$tmp/models/fm.safetensors"
wait "$WPID"
wait "$SAMPLER"
sleep 1
curl -s "http://127.0.0.1:$PORT/metrics" >"$tmp/metrics.txt"
final=$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$tmp/wrk/predict_b1.json" "http://127.0.0.1:$PORT/predict")

pass=0
fail=0
check() { if eval "$2"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi; }
result=$(grep '^RESULT' "$tmp/wrk.txt")
requests=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$tmp/wrk.txt")
non2xx=$(echo "$result" | sed -n 's/.*non2xx=\([0-9]*\).*/\1/p')
errors=$(echo "$result" | sed -n 's/.*errors=\([0-9]*\).*/\1/p')
sampler=$(grep '^SAMPLER' "$tmp/sampler.txt")
sa=$(echo "$sampler" | sed -n 's/.*A=\([0-9]*\).*/\1/p')
sb=$(echo "$sampler" | sed -n 's/.*B=\([0-9]*\).*/\1/p')
sbad=$(echo "$sampler" | sed -n 's/.*bad=\([0-9]*\).*/\1/p')
serr=$(echo "$sampler" | sed -n 's/.*err=\([0-9]*\).*/\1/p')
reloads=$(sed -n 's/^qatserve_model_reloads_total \([0-9]*\).*/\1/p' "$tmp/metrics.txt")
refusals=$(sed -n 's/^qatserve_model_refusals_total \([0-9]*\).*/\1/p' "$tmp/metrics.txt")
refused_log=$(grep -c 'refused' "$tmp/server.log")
echo "reload-test: wrk: $requests requests in ${DURATION} s, non-2xx ${non2xx:-?}, socket errors ${errors:-?}"
echo "reload-test: sampler: ${sa:-?} answers from A, ${sb:-?} from B, ${sbad:-?} wrong, ${serr:-?} errors"
echo "reload-test: $REPLACEMENTS replacements ($corrupt corrupt): server counted ${reloads:-?} reloads, ${refusals:-?} refusals ($refused_log refusal lines in the log)"
check "wrk ran" '[ -n "$requests" ] && [ "$requests" -gt 1000 ]'
check "no non-2xx answer under reload" '[ "${non2xx:-1}" = 0 ]'
check "no socket error under reload" '[ "${errors:-1}" = 0 ]'
check "sampler answers all from A or B" '[ "${sbad:-1}" = 0 ] && [ "${serr:-1}" = 0 ]'
check "sampler saw both models" '[ "${sa:-0}" -gt 0 ] && [ "${sb:-0}" -gt 0 ]'
check "reloads counted" '[ "${reloads:-0}" -ge 10 ]'
check "corrupt versions refused and counted" '[ "${refusals:-0}" -ge 1 ] && [ "$refused_log" -ge 1 ]'
check "server answers after the run" '[ "$final" = 200 ]'
if [ $fail -ne 0 ]; then
  echo "--- sampler:"; tail -n 5 "$tmp/sampler.txt"; echo "--- wrk:"; cat "$tmp/wrk.txt"
  echo "--- server log:"; tail -n 20 "$tmp/server.log"
fi
echo "reload-test: $pass passed, $fail failed"
[ $fail -eq 0 ]
