#!/usr/bin/env bash
# tiers.sh - the bit-exact checks once per int8 kernel tier this machine runs
# (qstool tiers): a server forced to each tier with QAT_KERNEL must return
# exactly the outputs the scalar reference tier computes in core (qstool
# expect under QAT_KERNEL=ref), for 1 row (the gemv path), 3 and 200 rows
# (row and panel blocks, more than one context chunk), JSON and v2, static
# and dynamic; /models and /metrics name the tier. A tier this machine
# cannot run, and an unknown name, stop start-up with exit 2 and a message
# naming what is missing. Each tier's lines name it.
#   BUILD=build tests/integration/tiers.sh     (called by run.sh)
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.."
SERVER=$BUILD/qatserve
QSTOOL=$BUILD/qstool
PY=/usr/bin/python3
. tests/lib/server.sh # the shell-test harness: temp dir, server on a free port, cleanup
qs_init tiers
tmp=$QS_TMP
pass=0
fail=0
check() {
  local desc=$1
  shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $desc" >&2; fi
}

mkdir -p "$tmp/models"
# Odd widths: 784 (K % 64 = 16), 67 (3 panels of 16 + tail, K % 4 = 3 next layer), 10.
"$QSTOOL" mkmodel "$tmp/models/m.safetensors" 784,67,33,10 17 class- >/dev/null || exit 1
for n in 1 3 200; do
  "$QSTOOL" rows $n 784 $((40 + n)) >"$tmp/rows$n.txt"
  QAT_KERNEL=ref "$QSTOOL" expect "$tmp/models/m.safetensors" "$tmp/rows$n.txt" >"$tmp/want$n.txt" || exit 1
  rows=$(sed 's/ /,/g; s/^/[/; s/$/]/' "$tmp/rows$n.txt" | paste -sd, -)
  echo "{\"model\":\"m\",\"inputs\":[$rows]}" >"$tmp/p$n.json"
  echo "{\"model\":\"m\",\"mode\":\"dynamic\",\"inputs\":[$rows]}" >"$tmp/d$n.json"
  echo "{\"inputs\":[{\"name\":\"input\",\"shape\":[$n,784],\"datatype\":\"FP32\",\"data\":[$rows]}]}" >"$tmp/v$n.json"
done
QAT_KERNEL=ref "$QSTOOL" expect "$tmp/models/m.safetensors" "$tmp/rows3.txt" dynamic >"$tmp/wantd3.txt" || exit 1

# same_outputs REPLY WANT [v2]: the reply's outputs, as their exact number
# text, equal qstool's lines (argmax lines skipped).
same_outputs() {
  "$PY" - "$1" "$2" "${3:-}" <<'PYEOF' || { echo "  reply: $(head -c 300 "$1")" >&2; return 1; }
import json, sys
d = json.loads(open(sys.argv[1]).read(), parse_float=str, parse_int=str)
want = [l.split() for l in open(sys.argv[2]).read().split("\n")[0::2] if l]
if sys.argv[3] == "v2":
    flat = d["outputs"][0]["data"]
    got = [flat[i:i + len(want[0])] for i in range(0, len(flat), len(want[0]))]
else:
    got = d["outputs"]
sys.exit(0 if got == want else 1)
PYEOF
}

start() { # start TIER: server with QAT_KERNEL=TIER on a free port (PORT)
  : >"$tmp/server.log"
  PORT=""
  QAT_KERNEL=$1 qs_start "$tmp/server.log" --models "$tmp/models" --threads 2 --quiet || return 1
  PORT=$QS_PORT
}
stop() { qs_stop "$QS_PID" TERM >/dev/null; }
post() { curl -s -o "$tmp/out" --max-time 30 "http://127.0.0.1:$PORT$1" --data-binary @"$2"; }

tiers=$("$QSTOOL" tiers)
echo "tiers: this machine runs: $(echo $tiers)"
for t in $tiers; do
  check "[$t] server starts with QAT_KERNEL=$t" start "$t"
  [ -n "$PORT" ] || continue
  check "[$t] banner names the tier" grep -q "int8 kernel: $t;" "$tmp/server.log"
  check "[$t] banner names the fp32 tier and the OpenBLAS core" grep -Eq "fp32 baseline: ($t gemv|OpenBLAS sgemv) for one row, OpenBLAS [A-Za-z]+ sgemm for batches" "$tmp/server.log"
  curl -s -o "$tmp/out" "http://127.0.0.1:$PORT/models/m"
  check "[$t] /models names the tier" "$PY" -c "import json,sys; sys.exit(json.load(open('$tmp/out'))['kernel'] != '$t')"
  check "[$t] /metrics build_info names the tier" sh -c "curl -s http://127.0.0.1:$PORT/metrics | grep -q 'qatserve_build_info{.*kernel=\"$t\"} 1'"
  for n in 1 3 200; do
    post /predict "$tmp/p$n.json"
    check "[$t] /predict $n rows equals the reference tier bit for bit" same_outputs "$tmp/out" "$tmp/want$n.txt"
    post /v2/models/m/infer "$tmp/v$n.json"
    check "[$t] v2 infer $n rows equals the reference tier bit for bit" same_outputs "$tmp/out" "$tmp/want$n.txt" v2
  done
  post /predict "$tmp/d3.json"
  check "[$t] dynamic mode equals the reference tier bit for bit" same_outputs "$tmp/out" "$tmp/wantd3.txt"
  stop
done

# Tiers this machine lacks (and a bogus name): refused at start-up, exit 2.
for t in avx2 avxvnni avx512vnni bogus; do
  case " $(echo $tiers) " in *" $t "*) continue ;; esac
  QAT_KERNEL=$t "$SERVER" --models "$tmp/models" --port 0 >"$tmp/refused.log" 2>&1
  rc=$?
  check "[$t] unavailable: qatserve exits 2 (got $rc)" [ "$rc" -eq 2 ]
  check "[$t] unavailable: the message names QAT_KERNEL and the reason" grep -qE "QAT_KERNEL=$t: (this CPU/OS lacks|unknown)" "$tmp/refused.log"
  if [ -x "$BUILD/qat" ]; then
    QAT_KERNEL=$t "$BUILD/qat" info "$tmp/models/m.safetensors" >"$tmp/refused.log" 2>&1
    rc=$?
    check "[$t] unavailable: qat exits 2 with the reason (got $rc)" sh -c "[ $rc -eq 2 ] && grep -q 'QAT_KERNEL=$t' '$tmp/refused.log'"
  fi
done

echo "tiers: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
