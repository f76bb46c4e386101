#!/usr/bin/env bash
# run.sh - integration tests: the real qatserve on a free loopback port,
# driven with curl. Models are random ones made by qstool through core's
# public API; qstool also computes core's outputs for the same input text, so
# the server's int8 outputs are checked bit for bit (the same shortest
# round-trip text of the same float on both sides: server/base/num.c).
#   BUILD=build tests/integration/run.sh      (make integration / make test)
#   BUILD=build/san ...                       (make test SAN=1)
# Ends with "integration: N passed, M failed"; exits non-zero on any failure.
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
SERVER=$BUILD/qatserve
QSTOOL=$BUILD/qstool
PY=/usr/bin/python3
for b in "$SERVER" "$QSTOOL"; do
  [ -x "$b" ] || { echo "integration: $b missing (make $b)"; echo "integration: 0 passed, 1 failed"; exit 1; }
done

. tests/lib/server.sh # the shell-test harness: temp dir, server on a free port, cleanup
qs_init integ
tmp=$QS_TMP
SPID=""
pass=0
fail=0
stop_server() {
  [ -n "$SPID" ] && qs_stop "$SPID"
  SPID=""
}
qs_on_exit '[ "$fail" -gt 0 ] && [ -f "$tmp/server.log" ] && { echo "--- last server log lines:" >&2; tail -n 30 "$tmp/server.log" >&2; }'

ok() { pass=$((pass + 1)); }
bad() {
  fail=$((fail + 1))
  echo "FAIL: $*" >&2
  [ -f "$tmp/out" ] && echo "  last reply ($CODE): $(head -c 300 "$tmp/out")" >&2
}
# check DESCRIPTION COMMAND...: one test.
check() {
  local desc=$1
  shift
  if "$@"; then ok; else bad "$desc"; fi
}

# req METHOD PATH [curl args]: reply body in $tmp/out, status in $CODE.
CODE=000
req() {
  local m=$1 p=$2
  shift 2
  CODE=$(curl -s -o "$tmp/out" -w '%{http_code}' -X "$m" --max-time 30 "$@" "http://127.0.0.1:$PORT$p")
}
# jtrue EXPR: the Python expression EXPR holds for d = the JSON reply
# (numbers kept as their exact text in s, parsed as floats in d).
jtrue() {
  "$PY" - "$tmp/out" "$1" <<'EOF'
import json, re, sys
raw = open(sys.argv[1]).read()
try:
    d = json.loads(raw)
    s = json.loads(raw, parse_float=str, parse_int=str)
except Exception as e:
    print("  not JSON:", e, file=sys.stderr); sys.exit(1)
# Leading "name = ..." lines are statements; the rest is one expression.
lines = sys.argv[2].strip().split("\n")
i = 0
while i < len(lines) and re.match(r"^\s*\w+\s*=[^=]", lines[i]):
    i += 1
ns = {"d": d, "s": s}
exec("\n".join(lines[:i]), ns)
ok = eval("(" + "\n".join(lines[i:]) + ")", ns)
if not ok:
    print("  expression false:", sys.argv[2], file=sys.stderr)
sys.exit(0 if ok else 1)
EOF
}
status_is() { [ "$CODE" = "$1" ]; }
is_error() { status_is "$1" && jtrue 'isinstance(d.get("error"), str) and len(d) == 1'; }

# start_server [flags]: starts on port 0, reads the bound port from the log.
start_server() {
  : >"$tmp/server.log"
  PORT=""
  qs_start "$tmp/server.log" --models "$tmp/models" --threads 4 --max-body 3000000 \
    --max-batch 256 --drain-timeout 10 "$@" 2>/dev/null
  SPID=$QS_PID
  PORT=$QS_PORT
  [ -n "$PORT" ]
}
# wait_for COMMAND...: retries for up to 10 s (reloads are debounced).
wait_for() {
  for _ in $(seq 1 100); do
    "$@" 2>/dev/null && return 0
    sleep 0.1
  done
  "$@"
}
# rows_json FILE: the rows file as a JSON array of rows, same number text.
rows_json() { sed 's/ /,/g; s/^/[/; s/$/]/' "$1" | paste -sd, - | sed 's/^/[/; s/$/]/'; }
# expected outputs / argmax / labels from core, as Python literals.
expect_py() {
  "$QSTOOL" expect "$1" "$2" ${3:-} >"$tmp/expect.txt" || return 1
  "$PY" - "$tmp/expect.txt" <<'EOF'
import sys
lines = open(sys.argv[1]).read().split("\n")
outs, preds, labels = [], [], []
for i in range(0, len(lines) - 1, 2):
    outs.append(lines[i].split())
    a, l = lines[i + 1].split(" ", 1)
    preds.append(int(a)); labels.append(l)
print(repr((outs, preds, labels)))
EOF
}

mkdir -p "$tmp/models"
"$QSTOOL" mkmodel "$tmp/models/fmnist.safetensors" 784,32,10 1 class- || exit 1
"$QSTOOL" mkmodel "$tmp/models/tiny.safetensors" 8,16,4 2 || exit 1
"$QSTOOL" mkmodel "$tmp/fmnist_v2.safetensors" 784,32,10 99 class- || exit 1
printf 'not a model at all' >"$tmp/models/broken.safetensors"
cp "$tmp/models/tiny.safetensors" "$tmp/models/.hidden.safetensors"
cp "$tmp/models/tiny.safetensors" "$tmp/models/bad name.safetensors"
"$QSTOOL" rows 3 784 7 >"$tmp/rows3.txt"
"$QSTOOL" rows 1 784 8 >"$tmp/rows1.txt"
"$QSTOOL" rows 2 8 9 >"$tmp/rows_tiny.txt"

# ---- flags ---------------------------------------------------------------
check "--help exits 0" "$SERVER" --help >/dev/null
check "--version names the version" sh -c "'$SERVER' --version | grep -q '^qatserve [0-9]'"
"$SERVER" --port 80x >/dev/null 2>&1
check "--port 80x is refused with exit 2" [ $? -eq 2 ]
"$SERVER" --threads 0 >/dev/null 2>&1
check "--threads 0 is refused" [ $? -eq 2 ]
PORT=9 # nothing listens on the discard port
"$SERVER" --probe --port 1 >/dev/null 2>&1
check "--probe fails with no server" [ $? -eq 1 ]

# ---- start-up -------------------------------------------------------------
check "server starts and prints its port" start_server
check "banner names versions and the kernel" grep -q "libmicrohttpd .*jansson .*libuv" "$tmp/server.log"
check "banner names the kernel" grep -q "int8 kernel: " "$tmp/server.log"
check "broken file refused with a reason" grep -q "model broken: refused" "$tmp/server.log"
check "--probe succeeds against the running server" "$SERVER" --probe --host 127.0.0.1 --port "$PORT"

req GET /models
check "GET /models lists the two valid models" jtrue '[m["name"] for m in d["models"]] == ["fmnist", "tiny"]'
check "/models has dims, layers, bits, labels, checksum" jtrue '
m = d["models"][0]
m["in_dim"] == 784 and m["out_dim"] == 10 and [l["activation"] for l in m["layers"]] == ["relu", "none"] and
all(l["weight_bits"] == 8 and l["activation_bits"] == 8 for l in m["layers"]) and m["labels"][3] == "class-3" and
m["checksum"]["algorithm"] == "crc32" and len(m["checksum"]["value"]) == 8 and m["metadata"]["accuracy_int8"] == "0.5" and
m["file_size"] > 0 and m["loaded_at"].endswith("Z")'
crc=$("$PY" -c "import zlib,sys; print('%08x' % zlib.crc32(open(sys.argv[1],'rb').read()))" "$tmp/models/fmnist.safetensors")
check "/models checksum is the file's crc32" jtrue "d['models'][0]['checksum']['value'] == '$crc'"
req GET /models/tiny
check "GET /models/tiny" jtrue 'd["name"] == "tiny" and d["in_dim"] == 8 and d["labels"] == []'
req GET /models/nope
check "GET /models/nope is 404" is_error 404

# ---- health and v2 metadata -------------------------------------------------
req GET /v2/health/live
check "live" jtrue 'd == {"live": True}'
req GET /v2/health/ready
check "ready is 200" status_is 200
req GET /v2
check "v2 server metadata" jtrue 'd["name"] == "qatserve" and isinstance(d["version"], str) and d["extensions"] == ["binary_tensor_data"]'
req GET /v2/models/fmnist
check "v2 model metadata shapes and datatypes" jtrue '
d["name"] == "fmnist" and d["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 784]}] and
d["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 10]}] and len(d["versions"]) == 1 and d["platform"]'
req GET /v2/models/fmnist/ready
check "v2 model ready" jtrue 'd == {"name": "fmnist", "ready": True}'
req GET /v2/models/nope/ready
check "v2 unknown model ready is 404" is_error 404
req GET /v2/models/broken
check "refused model is not served" is_error 404

# ---- /predict: bit-exact against core ----------------------------------------
E3=$(expect_py "$tmp/models/fmnist.safetensors" "$tmp/rows3.txt")
echo "{\"model\": \"fmnist\", \"inputs\": $(rows_json "$tmp/rows3.txt")}" >"$tmp/p3.json"
req POST /predict -H 'Content-Type: application/json' --data-binary @"$tmp/p3.json"
check "predict 3 rows is 200" status_is 200
check "predict int8 outputs equal core's bit for bit" jtrue "s['outputs'] == $E3[0]"
check "predict argmax and labels equal core's" jtrue "d['predictions'] == $E3[1] and d['labels'] == $E3[2]"
check "predict latency and drift fields" jtrue '
l = d["latency_us"]; r = d["drift"]
l["int8"] > 0 and l["fp32"] > 0 and abs(l["speedup"] - l["fp32"] / l["int8"]) < 0.01 * l["speedup"] + 0.01 and
l["total"] >= l["int8"] and 0 <= r["argmax_agreement"] <= 1 and r["max_abs_diff"] >= 0 and d["model"] == "fmnist"'
# 200 rows: more than one inference context's chunk (64 rows)
"$QSTOOL" rows 200 784 11 >"$tmp/rows200.txt"
E200=$(expect_py "$tmp/models/fmnist.safetensors" "$tmp/rows200.txt")
echo "{\"model\": \"fmnist\", \"inputs\": $(rows_json "$tmp/rows200.txt")}" >"$tmp/p200.json"
req POST /predict --data-binary @"$tmp/p200.json"
check "predict 200 rows equals core bit for bit" jtrue "s['outputs'] == $E200[0] and d['predictions'] == $E200[1]"
# the model is optional only when one is loaded (two are)
echo "{\"inputs\": $(rows_json "$tmp/rows3.txt")}" >"$tmp/p3nomodel.json"
req POST /predict --data-binary @"$tmp/p3nomodel.json"
check "predict without model with two loaded is 400" is_error 400
E1=$(expect_py "$tmp/models/fmnist.safetensors" "$tmp/rows1.txt")
echo "{\"model\":\"fmnist\",\"inputs\":[$(sed 's/ /,/g' "$tmp/rows1.txt")],\"baseline\":false}" >"$tmp/p1flat.json"
req POST /predict --data-binary @"$tmp/p1flat.json"
check "predict single flat row, no baseline" jtrue "s['outputs'] == $E1[0] and d['latency_us']['fp32'] is None and d['drift'] is None"
ED=$(expect_py "$tmp/models/fmnist.safetensors" "$tmp/rows3.txt" dynamic)
echo "{\"model\":\"fmnist\",\"mode\":\"dynamic\",\"inputs\":$(rows_json "$tmp/rows3.txt")}" >"$tmp/p3dyn.json"
req POST /predict --data-binary @"$tmp/p3dyn.json"
check "predict dynamic mode equals core's dynamic path" jtrue "s['outputs'] == $ED[0] and d['mode'] == 'dynamic'"
ET=$(expect_py "$tmp/models/tiny.safetensors" "$tmp/rows_tiny.txt")
echo "{\"model\":\"tiny\",\"inputs\":$(rows_json "$tmp/rows_tiny.txt")}" >"$tmp/ptiny.json"
req POST /predict --data-binary @"$tmp/ptiny.json"
check "predict on a model without labels" jtrue "s['outputs'] == $ET[0] and 'labels' not in d"

# ---- v2 infer ------------------------------------------------------------------
flat=$(paste -sd' ' "$tmp/rows3.txt" | sed 's/ /,/g')
echo "{\"id\":\"req-42\",\"inputs\":[{\"name\":\"input\",\"shape\":[3,784],\"datatype\":\"FP32\",\"data\":[$flat]}]}" >"$tmp/v2flat.json"
req POST /v2/models/fmnist/infer --data-binary @"$tmp/v2flat.json"
check "v2 infer flat data" jtrue "
o = d['outputs'][0]
d['id'] == 'req-42' and d['model_name'] == 'fmnist' and o['datatype'] == 'FP32' and o['shape'] == [3, 10] and
o['name'] == 'output' and s['outputs'][0]['data'] == sum($E3[0], []) and d['parameters']['int8_us'] > 0 and
d['parameters']['fp32_us'] > 0"
echo "{\"inputs\":[{\"name\":\"input\",\"shape\":[3,784],\"datatype\":\"FP32\",\"data\":$(rows_json "$tmp/rows3.txt")}],\"parameters\":{\"baseline\":false}}" >"$tmp/v2nested.json"
req POST /v2/models/fmnist/infer --data-binary @"$tmp/v2nested.json"
check "v2 infer nested data, no id" jtrue "s['outputs'][0]['data'] == sum($E3[0], []) and 'id' not in d and 'fp32_us' not in d['parameters']"
sed 's/"FP32"/"INT8"/' "$tmp/v2flat.json" >"$tmp/v2int8.json"
req POST /v2/models/fmnist/infer --data-binary @"$tmp/v2int8.json"
check "v2 non-FP32 datatype is 400" is_error 400
sed 's/\[3,784\]/[3,785]/' "$tmp/v2flat.json" >"$tmp/v2w.json"
req POST /v2/models/fmnist/infer --data-binary @"$tmp/v2w.json"
check "v2 wrong width in shape is 422" is_error 422
sed 's/\[3,784\]/[2,784]/' "$tmp/v2flat.json" >"$tmp/v2b.json"
req POST /v2/models/fmnist/infer --data-binary @"$tmp/v2b.json"
check "v2 data longer than shape is 422" is_error 422
sed 's/\[3,784\]/[4,784]/' "$tmp/v2flat.json" >"$tmp/v2b4.json"
req POST /v2/models/fmnist/infer --data-binary @"$tmp/v2b4.json"
check "v2 data shorter than shape is 422" is_error 422
sed 's/\[3,784\]/[300,784]/' "$tmp/v2flat.json" >"$tmp/v2big.json"
req POST /v2/models/fmnist/infer --data-binary @"$tmp/v2big.json"
check "v2 batch over --max-batch is 413" is_error 413
req POST /v2/models/nope/infer --data-binary @"$tmp/v2flat.json"
check "v2 infer unknown model is 404" is_error 404
req GET /v2/models/fmnist/infer
check "v2 infer with GET is 405" is_error 405
req POST /v2/models/fmnist/infer -d '{"inputs":[{"name":"a","shape":[1,784],"datatype":"FP32","data":[1]},{"name":"b"}]}'
check "v2 two input tensors is 400" is_error 400

# ---- errors ------------------------------------------------------------------
req GET /predict
check "GET /predict is 405" is_error 405
check "405 carries Allow" sh -c "curl -s -D - -o /dev/null http://127.0.0.1:$PORT/predict | grep -qi '^Allow: POST'"
req DELETE /metrics
check "DELETE /metrics is 405" is_error 405
req GET /nope
check "unknown route is 404" is_error 404
req POST /predict -d '{"model":"fmnist","inputs":[[1,2'
check "truncated JSON is 400" is_error 400
req POST /predict -d 'not json'
check "not JSON is 400" is_error 400
req POST /predict -d ''
check "empty body is 400" is_error 400
req POST /predict -d '{"model":"fmnist"}'
check "missing inputs is 400" is_error 400
req POST /predict -d '{"model":"fmnist","inputs":[[1,2,3]]}'
check "wrong width is 422" is_error 422
req POST /predict -d '{"model":"fmnist","inputs":[["a"]]}'
check "string number is 400" is_error 400
req POST /predict -d '{"model":"fmnist","inputs":[[null]]}'
check "null number is 400" is_error 400
req POST /predict -d '{"model":"fmnist","inputs":[[true]]}'
check "boolean number is 400" is_error 400
req POST /predict -d '{"model":"fmnist","inputs":[[0x10]]}'
check "hex number is 400" is_error 400
row783=$(seq -s, 1 783)
for bad_num in NaN Infinity -Infinity 1e999 -1e39; do
  req POST /predict -d "{\"model\":\"fmnist\",\"inputs\":[[$row783,$bad_num]]}"
  check "$bad_num is 422" is_error 422
done
req POST /predict -d "{\"model\":\"fmnist\",\"inputs\":[[$row783,-0]]}"
check "-0 is a number (200)" status_is 200
req POST /predict -d "{\"model\":\"fmnist\",\"inputs\":[[$row783,1e-999]]}"
check "1e-999 underflows to 0 (200)" status_is 200
req POST /predict -d '{"model":"fmnist","model":"tiny","inputs":[[1]]}'
check "duplicate keys are 400" is_error 400
req POST /predict -d '{"model":"nope","inputs":[[1]]}'
check "unknown model is 404" is_error 404
req POST /predict -d '{"model":"../fmnist","inputs":[[1]]}'
check "model name with ../ is 400" is_error 400
req POST /predict -d '{"model":"fmnist","inputs":[[1]],"mode":"fast"}'
check "bad mode is 400" is_error 400
req POST /predict -d '{"model":"fmnist","inputs":[[1]],"baseline":"no"}'
check "bad baseline type is 400" is_error 400
printf '{"model":"fm\xffnist","inputs":[[1]]}' >"$tmp/utf8.json"
req POST /predict --data-binary @"$tmp/utf8.json"
check "invalid UTF-8 is 400" is_error 400
"$PY" -c "import sys; sys.stdout.write('{\"x\":' + '[' * 100000 + ']' * 100000 + ', \"inputs\": [[1]]}')" >"$tmp/deep.json"
req POST /predict --data-binary @"$tmp/deep.json"
check "deep nesting is 400" is_error 400
"$PY" -c "
import sys
row = ','.join(['0.5'] * 784)
sys.stdout.write('{\"model\":\"fmnist\",\"inputs\":[' + ','.join(['[' + row + ']'] * 257) + ']}')" >"$tmp/batch257.json"
req POST /predict --data-binary @"$tmp/batch257.json"
check "batch over --max-batch is 413" is_error 413
head -c 4000000 /dev/zero | tr '\0' ' ' >"$tmp/big.json"
req POST /predict -H 'Content-Type: application/json' --data-binary @"$tmp/big.json"
check "body over --max-body (Content-Length) is 413" is_error 413
req POST /predict -H 'Transfer-Encoding: chunked' --data-binary @"$tmp/big.json"
check "chunked body over --max-body is 413" is_error 413
req POST /predict -H 'Content-Type: multipart/form-data; boundary=x' -d 'x'
check "multipart content type is 415" is_error 415
req GET "/v2/models/%2e%2e"
check "%2e%2e model name is 400" is_error 400
req GET "/v2/models/a%00b"
check "NUL in model name is refused" sh -c "[ $CODE = 400 ] || [ $CODE = 404 ]"
req GET "/v2/models/$(head -c 10000 /dev/zero | tr '\0' a)"
check "10 kB model name is refused (4xx)" sh -c "[ $CODE -ge 400 ] && [ $CODE -lt 500 ]"
req POST /predict --data-binary @"$tmp/p3.json"
check "a good request still answers right after the abuse" jtrue "s['outputs'] == $E3[0]"

# ---- metrics --------------------------------------------------------------------
metric() { # metric NAME_WITH_LABELS -> value (0 if absent)
  curl -s "http://127.0.0.1:$PORT/metrics" | awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }'
}
before=$(metric 'qatserve_requests_total{model="fmnist",endpoint="predict",code="200",protocol="http"}')
req POST /predict --data-binary @"$tmp/p3.json"
req POST /predict --data-binary @"$tmp/p3.json"
after=$(metric 'qatserve_requests_total{model="fmnist",endpoint="predict",code="200",protocol="http"}')
check "requests_total moves by 2 (was $before, now $after)" [ "$after" -eq $((before + 2)) ]
req GET /metrics
check "metrics content type is Prometheus text" sh -c "curl -s -D - -o /dev/null http://127.0.0.1:$PORT/metrics | grep -qi 'Content-Type: text/plain; version=0.0.4'"
m=$(curl -s "http://127.0.0.1:$PORT/metrics")
for want in 'qatserve_int8_latency_seconds_bucket{model="fmnist",le="+Inf"}' 'qatserve_fp32_latency_seconds_count{model="fmnist"}' \
  'qatserve_total_latency_seconds_sum{model="fmnist"}' 'qatserve_requests_in_flight ' 'qatserve_model_loads_total 2' \
  'qatserve_model_refusals_total 1' 'qatserve_build_info{version=' 'qatserve_requests_total{model="",endpoint="predict",code="404",protocol="http"}'; do
  check "metrics has $want" grep -qF "$want" <<<"$m"
done
check "422s are counted" grep -qE 'qatserve_requests_total\{model="fmnist",endpoint="predict",code="422",protocol="http"\} [1-9]' <<<"$m"

# ---- concurrency -------------------------------------------------------------------
for i in 1 2 3 4 5 6 7 8; do
  "$QSTOOL" rows 2 784 $((100 + i)) >"$tmp/crow$i.txt"
  echo "{\"model\":\"fmnist\",\"inputs\":$(rows_json "$tmp/crow$i.txt")}" >"$tmp/c$i.json"
done
for round in 1 2 3; do
  for i in 1 2 3 4 5 6 7 8; do
    curl -s -o "$tmp/cout$i.$round" "http://127.0.0.1:$PORT/predict" --data-binary @"$tmp/c$i.json" &
  done
done
wait_curls() { for p in $(jobs -p); do [ "$p" = "$SPID" ] || wait "$p"; done; }
wait_curls
for i in 1 2 3 4 5 6 7 8; do
  Ei=$(expect_py "$tmp/models/fmnist.safetensors" "$tmp/crow$i.txt")
  for round in 1 2 3; do
    cp "$tmp/cout$i.$round" "$tmp/out"
    CODE=200
    check "concurrent client $i round $round gets its own right answer" jtrue "s['outputs'] == $Ei[0]"
  done
done

# ---- reload ------------------------------------------------------------------------
version_of() { curl -s "http://127.0.0.1:$PORT/models/fmnist" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["version"])'; }
v1=$(version_of)
E3new=$(expect_py "$tmp/fmnist_v2.safetensors" "$tmp/rows3.txt")
cp "$tmp/fmnist_v2.safetensors" "$tmp/models/.fmnist.tmp"
mv "$tmp/models/.fmnist.tmp" "$tmp/models/fmnist.safetensors"
check "replaced file is picked up by the directory watch" wait_for sh -c "[ \"\$(curl -s http://127.0.0.1:$PORT/models/fmnist | grep -o '\"version\":[0-9]*')\" != '\"version\":$v1' ]"
req POST /predict --data-binary @"$tmp/p3.json"
check "after replacement, answers come from the new model" jtrue "s['outputs'] == $E3new[0]"
check "reload logged" grep -q "model fmnist: reloaded" "$tmp/server.log"
v2=$(version_of)
# a corrupt replacement is refused and the old model keeps answering
head -c 5000 "$tmp/models/fmnist.safetensors" >"$tmp/models/.fmnist.tmp"
mv "$tmp/models/.fmnist.tmp" "$tmp/models/fmnist.safetensors"
check "corrupt replacement refused (log)" wait_for grep -q "model fmnist: refused" "$tmp/server.log"
check "corrupt replacement counted in refusals" wait_for sh -c "curl -s http://127.0.0.1:$PORT/metrics | grep -q '^qatserve_model_refusals_total 2'"
req POST /predict --data-binary @"$tmp/p3.json"
check "old model keeps answering after a corrupt replacement" jtrue "s['outputs'] == $E3new[0]"
check "version unchanged after corrupt replacement" [ "$(version_of)" = "$v2" ]
# SIGHUP: a new model appears, and the reload is logged as SIGHUP's
"$QSTOOL" mkmodel "$tmp/models/extra.safetensors" 4,3 5 >/dev/null
kill -HUP "$SPID"
check "SIGHUP reload logged" wait_for grep -q "reload (SIGHUP)" "$tmp/server.log"
check "model added before SIGHUP is served" wait_for sh -c "curl -sf http://127.0.0.1:$PORT/v2/models/extra/ready >/dev/null"
rm "$tmp/models/tiny.safetensors"
check "removed file unloads the model" wait_for sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/v2/models/tiny) = 404 ]"
check "server still alive after reloads" kill -0 "$SPID"
qs_stop "$SPID" TERM
rc=$?
SPID=""
check "SIGTERM with nothing in flight exits 0 (got $rc)" [ "$rc" -eq 0 ]

# ---- SIGTERM drains an in-flight request ------------------------------------------------
cp "$tmp/fmnist_v2.safetensors" "$tmp/models/fmnist.safetensors"
QATSERVE_TEST_DELAY_MS=1500 start_server --max-inflight-bytes 3000000
check "server restarts with the test delay" [ -n "$PORT" ]
# all bodies in flight together are capped: a second big body while the
# first is held (1.5 s) gets 503, and is served once the first is done
curl -s -o "$tmp/bigA.out" -w '%{http_code}' "http://127.0.0.1:$PORT/predict" --data-binary @"$tmp/p200.json" >"$tmp/bigA.code" &
APID=$!
sleep 0.5
req POST /predict --data-binary @"$tmp/p200.json"
check "second big body over --max-inflight-bytes is 503" is_error 503
wait "$APID"
check "the first big body was served" [ "$(cat "$tmp/bigA.code")" = 200 ]
req POST /predict --data-binary @"$tmp/p200.json"
check "a big body is served again once the budget is free" status_is 200
curl -s -o "$tmp/slow.out" -w '%{http_code}' "http://127.0.0.1:$PORT/predict" --data-binary @"$tmp/p3.json" >"$tmp/slow.code" &
CPID=$!
sleep 0.5
kill -TERM "$SPID"
sleep 0.3
check "no new connections while draining" sh -c "! curl -s --max-time 2 -o /dev/null http://127.0.0.1:$PORT/v2/health/live"
wait "$CPID"
cp "$tmp/slow.out" "$tmp/out"
CODE=$(cat "$tmp/slow.code")
check "in-flight request finished with 200 during the drain" status_is 200
check "in-flight request's answer is right" jtrue "s['outputs'] == $E3new[0]"
qs_reap "$SPID"
rc=$?
SPID=""
check "SIGTERM drain exits 0 (got $rc)" [ "$rc" -eq 0 ]
check "drain logged" grep -q "drained in" "$tmp/server.log"
check "--probe fails once stopped" sh -c "! '$SERVER' --probe --port $PORT"

# Binary payloads and the kernel tiers have their own scripts (own servers).
for extra in binary tiers default_model; do
  if [ -x "tests/integration/$extra.sh" ]; then
    check "$extra.sh" env BUILD="$BUILD" "tests/integration/$extra.sh"
  fi
done

echo "integration: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
