#!/usr/bin/env bash
# k8s-test.sh - `make k8s-test`: the Kubernetes manifests run for real with
# `podman kube play` (root; podman from Debian, no cluster needed).
#   BUILD=build deploy/container/k8s-test.sh
# 1. deploy/tests/k8s_schema.py checks every manifest in deploy/k8s/ against
#    the Kubernetes API schema (python3-kubernetes models), including the
#    Service and HorizontalPodAutoscaler that podman does not play, and writes
#    the play file: deployment.yaml with extra/models-volume-patch.yaml merged
#    in, extra/models-pvc.yaml, the image from image.sh, 1 replica, and a
#    hostPort on 127.0.0.1 (the published port);
# 2. podman kube play: a podman volume for the claim (podman copies the
#    image's /models into it), the pod with the manifest's probes, security
#    context and resources; the test reads them back from the running process
#    (/proc: uid, capabilities, no_new_privs, seccomp, read-only root) and
#    from podman inspect (CPU and memory limits);
# 3. waits for the readiness and liveness paths of the manifest through the
#    published port, then /predict and /v2/models/NAME/infer, bit for bit
#    with the host build serving the same volume;
# 4. replaces the model on the volume: the pod reloads it (new crc32) and
#    still answers like the host build;
# 5. stops the pod (SIGTERM: exit 0), podman kube down, removes the claim's
#    volume, and checks that no pod, container, volume, network rule or
#    listening port is left.
# Note: podman 4.3 turns the livenessProbe into a `curl` health check on port
# 0 (it does not resolve named ports) in a container that has no shell or
# curl, and runs no readiness probe; the test polls both paths itself.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
container_test_start
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qs-k8s.XXXXXX")
hostpid=""
played=0
pause_before=$(podman images -q localhost/podman-pause 2>/dev/null | head -1)
cleanup() {
  set +e
  if [ "$played" = 1 ]; then
    podman kube down "$tmp/play.yaml" >/dev/null 2>&1
    podman volume rm -f qatserve-models >/dev/null 2>&1
    netavark_restore
  fi
  [ -z "$hostpid" ] || { kill "$hostpid" 2>/dev/null; wait "$hostpid" 2>/dev/null; }
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

port=$(free_port)
$PY deploy/tests/k8s_schema.py --write-play "$tmp/play.yaml" --image "$IMAGE" --host-port "$port" \
  || die "the manifests do not fit the Kubernetes API schema"
read -r ready_path live_path < <($PY -c '
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))["spec"]["template"]["spec"]["containers"][0]
print(c["readinessProbe"]["httpGet"]["path"], c["livenessProbe"]["httpGet"]["path"])' deploy/k8s/deployment.yaml)

# Leftovers of an interrupted run live in our own store: remove them first.
if podman pod exists qatserve-pod-0 2>/dev/null || podman volume exists qatserve-models 2>/dev/null; then
  log "removing the leftovers of an earlier run"
  podman kube down "$tmp/play.yaml" >/dev/null 2>&1 || true
  podman volume rm -f qatserve-models >/dev/null 2>&1 || true
fi
nat_before=$(iptables-save 2>/dev/null | grep -c NETAVARK || true)
fwd_before=$(cat /proc/sys/net/ipv4/ip_forward)
# netavark (the bridge network behind the published port) leaves its empty
# chains, the jumps to them and ip_forward=1 behind after the last container:
# when they were not there before the test, the test removes them.
netavark_restore() {
  [ "$nat_before" = 0 ] || return 0
  local t rule chain
  for t in filter nat; do
    iptables-save -t "$t" | grep -E '^-A [A-Z]+ .*-j NETAVARK' | sed 's/^-A //' | while read -r rule; do
      eval "iptables -t $t -D $rule" || true
    done
    iptables-save -t "$t" | sed -n 's/^:\(NETAVARK[^ ]*\) .*/\1/p' | while read -r chain; do
      iptables -t "$t" -F "$chain" && iptables -t "$t" -X "$chain" || true
    done
  done
  echo "$fwd_before" >/proc/sys/net/ipv4/ip_forward
}
bridge_before=$({ ip -o link show podman0 2>/dev/null || true; } | wc -l)

played=1
podman kube play "$tmp/play.yaml" >"$tmp/play.out" 2>"$tmp/play.err" \
  || { cat "$tmp/play.out" "$tmp/play.err"; die "podman kube play"; }
pod=qatserve-pod-0
ctr=$pod-qatserve
podman container exists "$ctr" || { podman ps -a; die "no container $ctr after kube play"; }
url=http://127.0.0.1:$port
wait_http "$url$ready_path" 200 30 || { podman logs "$ctr" | tail -20; die "readiness $ready_path"; }
t_ready=$(ms)
wait_http "$url$live_path" 200 5 || die "liveness $live_path"
log "ok: pod $pod ready: readiness $ready_path and liveness $live_path answer 200 on the published port $port ($((t_ready - T1)) ms after kube play)"

# --- what the manifest asked for, read back from the running process --------
pid=$(podman inspect -f '{{.State.Pid}}' "$ctr")
st=/proc/$pid/status
uid=$(awk '/^Uid:/ {print $2}' "$st"); gid=$(awk '/^Gid:/ {print $2}' "$st")
capeff=$(awk '/^CapEff:/ {print $2}' "$st"); capbnd=$(awk '/^CapBnd:/ {print $2}' "$st")
nnp=$(awk '/^NoNewPrivs:/ {print $2}' "$st"); sec=$(awk '/^Seccomp:/ {print $2}' "$st")
rootro=$(awk '$5 == "/" { print ($6 ~ /(^|,)ro(,|$)/) ? "ro" : "rw" }' "/proc/$pid/mountinfo" | head -1)
modro=$(awk '$5 == "/models" { print ($6 ~ /(^|,)ro(,|$)/) ? "ro" : "rw" }' "/proc/$pid/mountinfo" | head -1)
mem=$(podman inspect -f '{{.HostConfig.Memory}}' "$ctr")
cpus=$(podman inspect -f '{{.HostConfig.CpuQuota}} {{.HostConfig.CpuPeriod}}' "$ctr" | awk '{ print $2 ? $1 / $2 : 0 }')
threads=$(podman inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$ctr" | sed -n 's/^QATSERVE_THREADS=//p')
log "process: uid $uid gid $gid, CapEff $capeff, CapBnd $capbnd, NoNewPrivs $nnp, Seccomp $sec, root $rootro, /models $modro; limits: $cpus CPU, $((mem / 1048576)) MiB; QATSERVE_THREADS=$threads"
[ "$uid" = 10001 ] && [ "$gid" = 10001 ] || die "runAsUser/runAsGroup 10001 not applied (uid $uid gid $gid)"
[ "$capeff" = 0000000000000000 ] && [ "$capbnd" = 0000000000000000 ] || die "capabilities not all dropped"
[ "$nnp" = 1 ] || die "allowPrivilegeEscalation: false not applied"
[ "$sec" = 2 ] || die "seccompProfile RuntimeDefault not applied (Seccomp mode $sec)"
[ "$rootro" = ro ] || die "readOnlyRootFilesystem not applied"
[ "$modro" = ro ] || die "the models volume is not mounted read-only"
[ "$mem" = 268435456 ] || die "memory limit 256Mi not applied ($mem)"
[ "$cpus" = 2 ] || die "CPU limit 2 not applied ($cpus)"
log "ok: runAsNonRoot 10001, no capabilities, no privilege escalation, seccomp filter, read-only root and /models, 2 CPU / 256 MiB"

# --- answers through the published port, bit for bit with the host build -------
vol=$(podman volume inspect -f '{{.Mountpoint}}' qatserve-models)
name=$(ls "$vol" | sed -n 's/\.safetensors$//p' | head -1)
if [ -z "$name" ]; then   # an image built without models: put one on the volume
  name=random
  "$BUILD/qstool" mkmodel "$vol/.incoming" 784,32,10 11 class >/dev/null
  chmod 644 "$vol/.incoming" && mv "$vol/.incoming" "$vol/random.safetensors"
  $PY deploy/tests/same-answers.py wait-model "$url" random "$vol/random.safetensors" || die "model on the volume"
fi
log "volume qatserve-models ($vol) serves: $(ls "$vol" | tr '\n' ' ')"
host_server_start "$vol" "$tmp/host.log"
hurl=http://127.0.0.1:$hport
$PY deploy/tests/same-answers.py same "$url" "$hurl" --model "$name" --count 32 || die "pod and host build differ"

# --- replace the model on the volume: the pod reloads it -----------------------
"$BUILD/qstool" mkmodel "$tmp/replacement.safetensors" 784,24,10 13 class >/dev/null
cp "$tmp/replacement.safetensors" "$vol/.incoming" && chmod 644 "$vol/.incoming"
mv "$vol/.incoming" "$vol/$name.safetensors"
$PY deploy/tests/same-answers.py wait-model "$url" "$name" "$tmp/replacement.safetensors" || die "the pod did not reload"
$PY deploy/tests/same-answers.py wait-model "$hurl" "$name" "$tmp/replacement.safetensors" >/dev/null || die "host reload"
$PY deploy/tests/same-answers.py same "$url" "$hurl" --model "$name" --count 32 || die "pod and host differ after the reload"
log "pod log: $(podman logs "$ctr" 2>&1 | grep -o "model $name: reloaded.*" | head -1)"
kill "$hostpid"; wait "$hostpid" 2>/dev/null || true; hostpid=""

# --- stop, kube down, nothing left ------------------------------------------------
podman pod stop -t 15 "$pod" >/dev/null 2>&1 || die "podman pod stop"
rc=$(podman inspect -f '{{.State.ExitCode}}' "$ctr")
[ "$rc" = 0 ] || die "qatserve exit code $rc after SIGTERM"
log "ok: pod stopped with SIGTERM: qatserve exit code 0 ($(podman logs "$ctr" 2>&1 | grep -o 'drained in [0-9.]* ms' | head -1))"
podman kube down "$tmp/play.yaml" >/dev/null 2>&1 || die "podman kube down"
podman volume rm qatserve-models >/dev/null || die "podman volume rm qatserve-models"
played=0
[ -n "$pause_before" ] || podman rmi -f localhost/podman-pause >/dev/null 2>&1 || true
left="$(podman pod ps -q)$(podman ps -aq)$(podman volume ls -q)"
[ -z "$left" ] || { podman pod ps; podman ps -a; podman volume ls; die "left behind: $left"; }
netavark_restore
nat_after=$(iptables-save 2>/dev/null | grep -c NETAVARK || true)
bridge_after=$({ ip -o link show podman0 2>/dev/null || true; } | wc -l)
[ "$nat_after" -le "$nat_before" ] || die "netavark firewall rules left behind ($nat_before -> $nat_after)"
[ "$bridge_after" -le "$bridge_before" ] || die "bridge podman0 left behind"
[ "$(cat /proc/sys/net/ipv4/ip_forward)" = "$fwd_before" ] || die "ip_forward changed"
! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || die "port $port still open"
log "ok: kube down: no pod, container or volume left; netavark firewall lines $nat_before -> $nat_after, ip_forward $fwd_before; port $port closed"
rm -rf "$tmp"; trap - EXIT
log "PASS in $(( ($(ms) - T0) / 1000 )) s (image step $(( (T1 - T0) / 1000 )) s)"
