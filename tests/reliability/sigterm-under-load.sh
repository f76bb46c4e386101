#!/usr/bin/env bash
# sigterm-under-load.sh - SIGTERM while wrk loads the server and 8 slow
# requests are in flight (QATSERVE_TEST_DELAY_MS holds each /predict for
# DELAY_MS). Passes when every in-flight request completes with core's exact
# answer, a new connection made after the signal is refused (or answered
# 503), and the server exits 0 within --drain-timeout.
#   BUILD=build tests/reliability/sigterm-under-load.sh
set -u
BUILD=${BUILD:-build}
DELAY_MS=${DELAY_MS:-200}
DRAIN=${DRAIN:-5}
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
command -v wrk >/dev/null || { echo "sigterm-test: wrk missing (deploy/install-deps.sh --bench)"; exit 1; }
. tests/lib/server.sh # the shell-test harness: temp dir, server on a free port, cleanup
qs_init term
tmp=$QS_TMP
SPID=""
WPID=""
qs_on_exit '[ -n "$WPID" ] && { kill "$WPID" 2>/dev/null; wait "$WPID" 2>/dev/null; }'

$PY deploy/wrk/mkbodies.py "$tmp/wrk" >/dev/null || exit 1
$PY - "$tmp/wrk/predict_b1.json" "$tmp/row.txt" <<'EOF'
import re, sys
body = open(sys.argv[1]).read()
open(sys.argv[2], "w").write(" ".join(re.search(r'"inputs":\[\[([^\]]*)\]\]', body).group(1).split(",")) + "\n")
EOF
mkdir -p "$tmp/models"
"$BUILD/qstool" mkmodel "$tmp/models/fm.safetensors" 784,64,10 5 class >/dev/null || exit 1
"$BUILD/qstool" expect "$tmp/models/fm.safetensors" "$tmp/row.txt" | head -n 1 >"$tmp/expect.txt"

QATSERVE_TEST_DELAY_MS=$DELAY_MS qs_start "$tmp/server.log" --models "$tmp/models" \
  --quiet --drain-timeout "$DRAIN" --threads 4
SPID=$QS_PID
PORT=$QS_PORT
[ -n "$PORT" ] || { echo "sigterm-test: server did not start"; cat "$tmp/server.log"; exit 1; }

BODY="$tmp/wrk/predict_b1.json" wrk -t2 -c8 -d10s --timeout 5s -s deploy/wrk/predict.lua \
  "http://127.0.0.1:$PORT/predict" >"$tmp/wrk.txt" 2>&1 &
WPID=$!
sleep 1.5

# 8 requests in flight on accepted connections, then SIGTERM, then a new
# connection; the exit is timed from the signal.
$PY - "$PORT" "$tmp/wrk/predict_b1.json" "$tmp/expect.txt" "$SPID" "$DELAY_MS" <<'EOF' >"$tmp/clients.txt" 2>&1
import http.client, json, os, signal, socket, sys, threading, time
port, body = int(sys.argv[1]), open(sys.argv[2], "rb").read()
want = open(sys.argv[3]).read().split()
pid, delay = int(sys.argv[4]), int(sys.argv[5]) / 1000.0
results = []

ready = threading.Barrier(9)

def client(i):
    t0 = time.monotonic()
    try:
        # First a quick request: the connection is accepted before the signal
        # (one still in the kernel's accept queue at SIGTERM is a new
        # connection, and is refused).
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", "/v2/health/live")
        c.getresponse().read()
        ready.wait()
        t0 = time.monotonic()
        c.request("POST", "/predict", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        raw = r.read()
        ok = r.status == 200 and json.loads(raw, parse_float=str, parse_int=str)["outputs"][0] == want
        results.append((i, r.status, ok, time.monotonic() - t0))
    except Exception as e:
        results.append((i, repr(e), False, time.monotonic() - t0))

ts = [threading.Thread(target=client, args=(i,)) for i in range(8)]
for t in ts:
    t.start()
ready.wait()
time.sleep(delay / 3)  # all 8 requests sent on accepted connections
t_sig = time.monotonic()
os.kill(pid, signal.SIGTERM)
time.sleep(0.1)
try:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("POST", "/predict", body, {"Content-Type": "application/json"})
    st = c.getresponse().status
    print("NEWCONN status %d" % st)
except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected, socket.timeout) as e:
    print("NEWCONN refused %s" % type(e).__name__)
for t in ts:
    t.join()
# wait for the exit (the parent reaps it; poll /proc)
while os.path.exists("/proc/%d" % pid) and open("/proc/%d/stat" % pid).read().split()[2] != "Z":
    if time.monotonic() - t_sig > 30:
        break
    time.sleep(0.01)
print("EXIT_AFTER %.3f" % (time.monotonic() - t_sig))
good = sum(1 for r in results if r[2])
print("INFLIGHT %d of %d completed with the right answer" % (good, len(results)))
for r in results:
    if not r[2]:
        print("  client", r)
EOF
qs_reap "$SPID" # signalled by the clients above
rc=$?
SPID=""
wait "$WPID" 2>/dev/null
WPID=""

pass=0
fail=0
check() { if eval "$2"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi; }
inflight=$(sed -n 's/^INFLIGHT \([0-9]*\) of.*/\1/p' "$tmp/clients.txt")
exit_after=$(sed -n 's/^EXIT_AFTER //p' "$tmp/clients.txt")
newconn=$(grep '^NEWCONN' "$tmp/clients.txt")
drained=$(grep -o 'drained in [0-9.]* ms' "$tmp/server.log")
echo "sigterm-test: ${inflight:-?}/8 in-flight requests completed; new connection: ${newconn#NEWCONN }; exit code $rc ${exit_after:-?} s after SIGTERM (${drained:-no drain line}); wrk: $(grep -o 'RESULT.*' "$tmp/wrk.txt")"
check "in-flight requests completed with the right answer" '[ "${inflight:-0}" = 8 ]'
check "new connection refused after SIGTERM" 'echo "$newconn" | grep -q -e refused -e "status 503"'
check "exit code 0" '[ "$rc" = 0 ]'
check "exit within the drain timeout" 'awk -v t="${exit_after:-99}" -v d="$DRAIN" "BEGIN { exit !(t < d) }"'
check "drain logged" '[ -n "$drained" ]'
[ $fail -ne 0 ] && { cat "$tmp/clients.txt"; tail -n 20 "$tmp/server.log"; }
echo "sigterm-test: $pass passed, $fail failed"
[ $fail -eq 0 ]
