#!/usr/bin/env bash
# abuse.sh - hostile clients against the real qatserve on a free loopback
# port (tests/reliability/abuse.py has the cases), while a well-behaved client
# checks every answer it gets against core's outputs.
#   BUILD=build tests/reliability/abuse.sh        (make abuse-test)
# Ends with "abuse-test: N passed, M failed"; exits non-zero on failure.
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
SERVER=$BUILD/qatserve
QSTOOL=$BUILD/qstool
PY=/usr/bin/python3
CONN_TIMEOUT=${CONN_TIMEOUT:-3}
for b in "$SERVER" "$QSTOOL"; do
  [ -x "$b" ] || { echo "abuse-test: $b missing"; echo "abuse-test: 0 passed, 1 failed"; exit 1; }
done
. tests/lib/server.sh # the shell-test harness: temp dir, server on a free port, cleanup
qs_init abuse
tmp=$QS_TMP
SPID=""

mkdir -p "$tmp/models"
"$QSTOOL" mkmodel "$tmp/models/fm.safetensors" 784,32,10 7 class >/dev/null || exit 1
"$QSTOOL" mkmodel "$tmp/models/tiny.safetensors" 2,2 8 >/dev/null || exit 1
"$QSTOOL" rows 1 784 11 >"$tmp/row.txt"
"$QSTOOL" expect "$tmp/models/fm.safetensors" "$tmp/row.txt" >"$tmp/expect.txt" || exit 1
"$PY" - "$tmp" <<'PYEOF'
import json, sys
t = sys.argv[1]
row = open(t + "/row.txt").read().split()
lines = open(t + "/expect.txt").read().split("\n")
json.dump({"row": row, "outputs": lines[0].split(), "prediction": int(lines[1].split()[0])},
          open(t + "/expect.json", "w"))
PYEOF

# Defaults for body and batch caps (4 MiB, 1024 rows); a short connection
# timeout so the timeout cases take seconds.
qs_start "$tmp/server.log" --models "$tmp/models" --conn-timeout "$CONN_TIMEOUT" --quiet
SPID=$QS_PID
PORT=$QS_PORT
if [ -z "$PORT" ]; then
  echo "abuse-test: server did not start"; cat "$tmp/server.log"; echo "abuse-test: 0 passed, 1 failed"; exit 1
fi
"$PY" tests/reliability/abuse.py "$PORT" "$tmp/expect.json" "$CONN_TIMEOUT" "$SPID"
rc=$?
if ! kill -0 "$SPID" 2>/dev/null; then
  echo "FAIL: the server died"; tail -n 20 "$tmp/server.log"; exit 1
fi
[ $rc -ne 0 ] && { echo "--- server log tail:"; tail -n 15 "$tmp/server.log"; }
exit $rc
