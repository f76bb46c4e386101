#!/usr/bin/env bash
# default_model.sh - --default-model NAME: requests that name no model go to
# NAME (native JSON, native binary, gRPC-less); without it two loaded models
# make such requests a 400 that says how to name one; a default that is not
# loaded is a 503 that says which file to add; a bad name stops start-up.
#   BUILD=build tests/integration/default_model.sh     (called by run.sh)
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
. tests/lib/server.sh
qs_init default-model
QSTOOL=$BUILD/qstool
pass=0
fail=0
check() {
  local desc=$1
  shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $desc" >&2; fi
}
mkdir -p "$QS_TMP/models"
"$QSTOOL" mkmodel "$QS_TMP/models/a.safetensors" 4,3 1 class >/dev/null || exit 1
"$QSTOOL" mkmodel "$QS_TMP/models/b.safetensors" 4,5 2 class >/dev/null || exit 1
body='{"inputs":[[0.1,0.2,0.3,0.4]]}'
post() { curl -s -o "$QS_TMP/out" -w '%{http_code}' "$@"; }
has() { grep -q "$1" "$QS_TMP/out"; }

qs_start "$QS_TMP/plain.log" --models "$QS_TMP/models" --grpc-port -1 --quiet || exit 1
check "two models, none named: 400" [ "$(post -d "$body" "http://127.0.0.1:$QS_PORT/predict")" = 400 ]
check "... the error says how to name one" has 'name the model'
check "... and names --default-model" has 'default-model'
qs_stop

qs_start "$QS_TMP/b.log" --models "$QS_TMP/models" --grpc-port -1 --quiet --default-model b || exit 1
check "default b: 200" [ "$(post -d "$body" "http://127.0.0.1:$QS_PORT/predict")" = 200 ]
check "... answered by b" has '"model":"b"'
check "... five outputs (b is 4 -> 5)" /usr/bin/python3 -c 'import json,sys; assert len(json.load(open(sys.argv[1]))["outputs"][0]) == 5' "$QS_TMP/out"
check "a named model still wins" [ "$(post -d '{"model":"a","inputs":[[0.1,0.2,0.3,0.4]]}' "http://127.0.0.1:$QS_PORT/predict")" = 200 ]
check "... answered by a" has '"model":"a"'
printf '\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x40\x40\x00\x00\x80\x40' >"$QS_TMP/row.f32"
check "binary without ?model: 200" [ "$(post --data-binary @"$QS_TMP/row.f32" -H 'Content-Type: application/octet-stream' "http://127.0.0.1:$QS_PORT/predict")" = 200 ]
check "banner names the default" grep -q 'default model: b' "$QS_TMP/b.log"
qs_stop

qs_start "$QS_TMP/none.log" --models "$QS_TMP/models" --grpc-port -1 --quiet --default-model c || exit 1
check "default not loaded: 503" [ "$(post -d "$body" "http://127.0.0.1:$QS_PORT/predict")" = 503 ]
check "... the error names the file to add" has 'c.safetensors'
check "banner says it is not loaded" grep -q 'not loaded yet' "$QS_TMP/none.log"
qs_stop

"$QS_SERVER" --default-model ../x --port 0 >"$QS_TMP/bad.log" 2>&1
check "bad --default-model: exit 2" [ $? = 2 ]
check "... with a message" grep -q 'not a model name' "$QS_TMP/bad.log"

echo "default-model: $pass passed, $fail failed"
[ "$fail" = 0 ]
