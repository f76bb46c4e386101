#!/usr/bin/env bash
# versions.sh - model versions count per name, as docs/api.md says: a second
# model loads as version 1, a reload goes 1 -> 2, a refused file uses no
# number (the next good reload is 3), a removed and re-added name starts at 1.
#   BUILD=build tests/docs/versions.sh        (part of make docs-test)
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qs-versions.XXXXXX")
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
pass=0 fail=0
mkdir "$tmp/models"
"$BUILD/qstool" mkmodel "$tmp/models/a.safetensors" 4,8,3 1 >/dev/null || exit 1
"$BUILD/qstool" mkmodel "$tmp/b1" 4,8,3 2 >/dev/null || exit 1
"$BUILD/qstool" mkmodel "$tmp/b2" 4,8,3 3 >/dev/null || exit 1
"$BUILD/qatserve" --models "$tmp/models" --port 0 --quiet >"$tmp/log" 2>&1 &
pid=$!
port=""
for _ in $(seq 1 200); do
  port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/log")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "versions: server did not start: $(cat "$tmp/log")"; exit 1; }
# expect NAME VERSION WHAT: waits up to 5 s for /models/NAME to show VERSION.
expect() {
  local got=""
  for _ in $(seq 1 50); do
    got=$(curl -s "localhost:$port/models/$1" | sed -n 's/.*"version":\([0-9]*\).*/\1/p')
    [ "$got" = "$2" ] && { pass=$((pass + 1)); return; }
    sleep 0.1
  done
  fail=$((fail + 1))
  echo "FAIL: $3: $1 is version '${got:-none}', expected $2" >&2
}
expect a 1 "first model"
cp "$tmp/b1" "$tmp/models/.b" && mv "$tmp/models/.b" "$tmp/models/b.safetensors"
expect b 1 "a second model"
cp "$tmp/b2" "$tmp/models/.b" && mv "$tmp/models/.b" "$tmp/models/b.safetensors"
expect b 2 "a reload"
printf 'not a model' >"$tmp/models/.b" && mv "$tmp/models/.b" "$tmp/models/b.safetensors"
sleep 1
expect b 2 "a refused file (the old version keeps serving)"
cp "$tmp/b1" "$tmp/models/.b" && mv "$tmp/models/.b" "$tmp/models/b.safetensors"
expect b 3 "the next good file after a refused one"
expect a 1 "the other model, untouched"
rm "$tmp/models/b.safetensors"
sleep 1
cp "$tmp/b2" "$tmp/models/.b" && mv "$tmp/models/.b" "$tmp/models/b.safetensors"
expect b 1 "a name removed and added again"
echo "versions: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
