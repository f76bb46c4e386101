#!/usr/bin/env bash
# lb-test.sh - `make lb-test`: two qatserve replicas (containers of the image
# from deploy/container/image.sh) behind HAProxy from Debian
# (deploy/lb/haproxy.cfg, its health checks on the readiness probe), loaded
# with make loadtest's wrk script while the replicas are restarted one after
# the other (a rolling restart: SIGTERM, drain, exit 0, start, ready again).
#   BUILD=build DURATION=24 deploy/lb/lb-test.sh
# Passes when wrk saw no failed request (no socket error, no non-2xx), each
# replica left the pool during its restart and came back, both served
# requests, and the v2 route answers through the balancer too.
# shellcheck source=../container/lib.sh
. "$(dirname "$0")/../container/lib.sh"
BUILD=${BUILD:-build}
DURATION=${DURATION:-24}
LB_CFG=${LB_CFG:-deploy/lb/haproxy.cfg}   # another config, e.g. to see the test fail without retries
cd "$ROOT"
T0=$(ms)
command -v haproxy >/dev/null || die "haproxy is not installed (deploy/install-deps.sh --infra)"
command -v wrk >/dev/null || die "wrk is not installed (deploy/install-deps.sh --infra)"
"$ROOT/deploy/container/image.sh"   # a no-op after make container-image
podman_env
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qs-lb.XXXXXX")
names=()
pids=()
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  for n in "${names[@]}"; do podman rm -f -t 0 "$n" >/dev/null 2>&1; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

mkdir -p "$tmp/models"
shipped=$(ls models/*.safetensors 2>/dev/null | head -n 1 || true)
if [ -n "$shipped" ]; then cp "$shipped" "$tmp/models/"; else
  "$BUILD/qstool" mkmodel "$tmp/models/random.safetensors" 784,32,10 11 class >/dev/null; fi
name=$(basename "$(ls "$tmp"/models/*.safetensors)" .safetensors)
chmod 755 "$tmp" "$tmp/models"; chmod 644 "$tmp"/models/*
$PY deploy/wrk/mkbodies.py "$tmp/bodies" >/dev/null

# --- two replicas -----------------------------------------------------------------
declare -A rport
start_replica() { # NAME: create (first time) or start the container, wait until ready
  local n=$1
  if ! podman container exists "$n"; then
    podman create --name "$n" --network=host --read-only --cap-drop=ALL --no-healthcheck \
      --user 10001:10001 -e PORT="${rport[$n]}" -e QATSERVE_THREADS=1 \
      -v "$tmp/models:/models:ro" "$IMAGE" --quiet >/dev/null
    names+=("$n")
  fi
  podman start "$n" >/dev/null
  wait_http "http://127.0.0.1:${rport[$n]}/v2/health/ready" 200 20 || { podman logs "$n" | tail; die "$n not ready"; }
}
r1=qatserve-lb-r1-$$; r2=qatserve-lb-r2-$$
rport[$r1]=$(free_port); rport[$r2]=$(free_port)
start_replica "$r1"; start_replica "$r2"
log "replicas: $r1 on ${rport[$r1]}, $r2 on ${rport[$r2]} (1 thread each)"

# --- HAProxy ------------------------------------------------------------------------
lport=$(free_port)
export QATSERVE_1=127.0.0.1:${rport[$r1]} QATSERVE_2=127.0.0.1:${rport[$r2]}
export LB_BIND=127.0.0.1:$lport LB_STATS_SOCKET=$tmp/haproxy.sock
haproxy -c -q -f "$LB_CFG" || die "haproxy -c: $LB_CFG is not valid"
haproxy -db -f "$LB_CFG" >"$tmp/haproxy.log" 2>&1 &
pids+=($!)
# stat FIELD SERVER: one field of HAProxy's `show stat` for backend qatserve.
stat() {
  $PY - "$LB_STATS_SOCKET" "$1" "$2" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1]); s.sendall(b"show stat\n")
data = b""
while True:
    b = s.recv(65536)
    if not b: break
    data += b
lines = data.decode().splitlines()
head = lines[0].lstrip("# ").split(",")
for l in lines[1:]:
    f = dict(zip(head, l.split(",")))
    if f.get("pxname") == "qatserve" and f.get("svname") == sys.argv[3]:
        print(f.get(sys.argv[2], "")); break
PYEOF
}
wait_state() { # SERVER STATE SECONDS
  local i
  for i in $(seq 1 $(($3 * 20))); do
    [ "$(stat status "$1" 2>/dev/null)" = "$2" ] && return 0
    sleep 0.05
  done
  return 1
}
for _ in $(seq 1 100); do [ -S "$LB_STATS_SOCKET" ] && break; sleep 0.05; done
wait_state r1 UP 10 && wait_state r2 UP 10 || { cat "$tmp/haproxy.log"; die "HAProxy never saw both replicas UP"; }
log "HAProxy on $lport: r1 $(stat status r1), r2 $(stat status r2) (checks: GET /v2/health/ready every 250 ms)"
$PY deploy/tests/same-answers.py same "http://127.0.0.1:$lport" "http://127.0.0.1:${rport[$r1]}" --model "$name" --count 16 \
  || die "answers through the balancer differ from a replica's"

# --- wrk while each replica restarts -----------------------------------------------------
# Requests a replica answered 200 on /predict (the series may carry more labels).
served() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$name" '
  index($1, "qatserve_requests_total{model=\"" m "\",endpoint=\"predict\",code=\"200\"") == 1 { n += $2 }
  END { print n + 0 }'; }
BODY="$tmp/bodies/predict_b1.json" wrk -t2 -c8 -d"${DURATION}s" --timeout 5s --latency \
  -s deploy/wrk/predict.lua "http://127.0.0.1:$lport/predict" >"$tmp/wrk.txt" 2>&1 &
wpid=$!
pids+=("$wpid")
sleep 4
for pair in "r1 $r1" "r2 $r2"; do
  set -- $pair
  before=$(served "${rport[$2]}")
  t_stop=$(ms)
  podman stop -t 15 "$2" >/dev/null 2>"$tmp/stop.err" || { cat "$tmp/stop.err"; die "podman stop $2"; }
  t_stopped=$(ms)
  rc=$(podman inspect -f '{{.State.ExitCode}}' "$2")
  [ "$rc" = 0 ] || die "$2: exit code $rc after SIGTERM"
  wait_state "$1" DOWN 5 || die "HAProxy did not take $1 out of the pool"
  drained=$(podman logs "$2" 2>&1 | grep -o 'drained in [0-9.]* ms' | tail -1)
  start_replica "$2"
  wait_state "$1" UP 10 || die "HAProxy did not put $1 back"
  log "rolling restart of $1: served $before requests, SIGTERM -> exit 0 in $((t_stopped - t_stop)) ms ($drained), DOWN in HAProxy, restarted and UP again $(( $(ms) - t_stop )) ms after the signal"
  sleep 4
done
wait "$wpid" || true
pids=("${pids[@]/$wpid}")
result=$(grep '^RESULT' "$tmp/wrk.txt" || true)
[ -n "$result" ] || { cat "$tmp/wrk.txt"; die "wrk gave no RESULT line"; }
log "wrk -t2 -c8 -d${DURATION}s through HAProxy: $result"
n2=$(sed -n 's/.*non2xx=\([0-9]*\).*/\1/p' <<<"$result"); ne=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$result")
total=$(awk '/requests in/ { print $1 }' "$tmp/wrk.txt")
[ "$n2" = 0 ] && [ "$ne" = 0 ] || { cat "$tmp/wrk.txt"; die "failed requests during the rolling restart: non2xx=$n2 errors=$ne"; }
s1=$(served "${rport[$r1]}"); s2=$(served "${rport[$r2]}")
[ "${s1:-0}" -gt 0 ] && [ "${s2:-0}" -gt 0 ] || die "a replica served nothing after its restart (r1 $s1, r2 $s2)"
log "ok: $total requests, none failed; after their restarts r1 served $s1, r2 $s2; HAProxy retries $(stat wretr r1)+$(stat wretr r2), redispatches $(stat wredis r1)+$(stat wredis r2), 5xx from servers $(stat hrsp_5xx r1)+$(stat hrsp_5xx r2)"

# The v2 route through the balancer, same script.
BODY="$tmp/bodies/v2_b1.json" wrk -t1 -c4 -d3s --timeout 5s -s deploy/wrk/predict.lua \
  "http://127.0.0.1:$lport/v2/models/$name/infer" >"$tmp/wrk2.txt" 2>&1 || true
r2res=$(grep '^RESULT' "$tmp/wrk2.txt" || true)
grep -q 'non2xx=0 errors=0' <<<"$r2res" || { cat "$tmp/wrk2.txt"; die "v2 infer through HAProxy: $r2res"; }
log "ok: /v2/models/$name/infer through HAProxy: $r2res"

cleanup; trap - EXIT
log "PASS in $(( ($(ms) - T0) / 1000 )) s"
