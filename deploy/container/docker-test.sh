#!/usr/bin/env bash
# docker-test.sh - `make docker-test`: the Dockerfile built and run for real
# with rootful podman from Debian (root; no Docker daemon needed).
#   BUILD=build deploy/container/docker-test.sh
# 1. image.sh builds the image (once per source state, kept in build/podman);
# 2. the container runs as it would in production (uid 10001, read-only root,
#    no capabilities, no new privileges) with a host directory mounted
#    read-only on /models, and answers GET /v2/health/ready;
# 3. deploy/tests/check-predict.py: real Fashion-MNIST images, the page, the
#    answer equal to core's reference (qstool expect) bit for bit, accuracy;
# 4. the same requests to the host build (build/qatserve on the same models):
#    the same outputs, bit for bit (deploy/tests/same-answers.py);
# 5. hot reload through the volume: a new model appears and answers, the
#    served model replaced by another file is reloaded (new crc32), and
#    deleting a model unloads it;
# 6. SIGTERM drain: a second container with a 1.5 s test delay per /predict
#    gets SIGTERM while a request is in flight; the request must finish with
#    200 and the container must exit 0.
# It removes the containers and files it made; the image stays in
# build/podman for k8s-test and the next run (`make container-clean`).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
container_test_start

tmp=$(mktemp -d "${TMPDIR:-/tmp}/qs-docker.XXXXXX")
names=()
hostpid=""
cleanup() {
  set +e
  for n in "${names[@]}"; do podman rm -f -t 0 "$n" >/dev/null 2>&1; done
  [ -z "$hostpid" ] || { kill "$hostpid" 2>/dev/null; wait "$hostpid" 2>/dev/null; }
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- models on a host directory (the volume) ---------------------------------
QSTOOL=$ROOT/$BUILD/qstool
mkdir -p "$tmp/models"
shipped=$(ls models/*.safetensors 2>/dev/null | head -n 1 || true)
if [ -n "$shipped" ]; then
  name=$(basename "$shipped" .safetensors)
  cp "$shipped" "$tmp/models/"
  check_args=(--expect-correct --min-accuracy "${DOCKER_TEST_MIN_ACC:-0.80}" --count 500)
else
  name=random
  "$QSTOOL" mkmodel "$tmp/models/random.safetensors" 784,32,10 11 class >/dev/null
  check_args=(--min-accuracy 0 --count 100)
fi
"$QSTOOL" mkmodel "$tmp/second.safetensors" 784,16,10 12 >/dev/null
"$QSTOOL" mkmodel "$tmp/replacement.safetensors" 784,24,10 13 class >/dev/null
chmod 755 "$tmp" "$tmp/models"; chmod 644 "$tmp"/models/* "$tmp"/*.safetensors
log "model $name from a host directory mounted read-only on /models"

# --- the container ---------------------------------------------------------------
port=$(free_port)
cname=qatserve-docker-test-$$
names+=("$cname")
podman run -d --name "$cname" --network=host --read-only --cap-drop=ALL \
  --security-opt no-new-privileges --user 10001:10001 --health-interval disable \
  -e PORT="$port" -v "$tmp/models:/models:ro" "$IMAGE" --threads 2 >/dev/null 2>"$tmp/podman.err" \
  || { cat "$tmp/podman.err"; die "podman run"; }
url=http://127.0.0.1:$port
wait_http "$url/v2/health/ready" 200 20 || { podman logs "$cname" | tail -20; die "not ready"; }
log "ok: GET /v2/health/ready 200 ($(( ($(ms) - T1) )) ms after podman run)"
# The image's HEALTHCHECK (qatserve --probe; no timer: no systemd here).
hc=$(podman healthcheck run "$cname" 2>&1) || die "podman healthcheck run: ${hc:-unhealthy}"
log "ok: the image's HEALTHCHECK (qatserve --probe) passes: ${hc:-healthy}"
log "user in the container: $(podman top "$cname" user | tail -1), image $(podman image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1/1e6}')"

$PY deploy/tests/check-predict.py --url "$url" --page --model "$name" \
  --reference "$QSTOOL expect $tmp/models/$name.safetensors" "${check_args[@]}" \
  || { podman logs "$cname" | tail -20; die "check-predict"; }

# --- bit for bit with the host build ------------------------------------------------
host_server_start "$tmp/models" "$tmp/host.log"
$PY deploy/tests/same-answers.py same "$url" "http://127.0.0.1:$hport" --model "$name" --count 64 \
  || die "container and host build differ"
kill "$hostpid"; wait "$hostpid" 2>/dev/null || true; hostpid=""

# --- hot reload through the volume ---------------------------------------------------
# check-predict: a new file appears and answers, and goes away when deleted.
$PY deploy/tests/check-predict.py --url "$url" --model "$name" \
  --reload-dir "$tmp/models" --reload-model "$tmp/second.safetensors" || die "reload (new model)"
# The serving model replaced by another file (written aside, then renamed).
cp "$tmp/replacement.safetensors" "$tmp/models/.incoming" && chmod 644 "$tmp/models/.incoming"
mv "$tmp/models/.incoming" "$tmp/models/$name.safetensors"
$PY deploy/tests/same-answers.py wait-model "$url" "$name" "$tmp/replacement.safetensors" || die "replace"
$PY deploy/tests/check-predict.py --url "$url" --model "$name" --min-accuracy 0 --count 10 \
  --reference "$QSTOOL expect $tmp/models/$name.safetensors" >/dev/null \
  || die "the replaced model's answers are not core's"
log "ok: the replaced model answers, equal to core's reference for the new file"
grep_log() { podman logs "$cname" 2>&1 | grep -c "$1" || true; }
log "container log: $(grep_log ': loaded') loaded, $(grep_log ': reloaded') reloaded, $(grep_log 'unloaded') unloaded"
podman stop -t 15 "$cname" >/dev/null 2>"$tmp/podman.err" || { cat "$tmp/podman.err"; die "podman stop"; }
rc=$(podman inspect -f '{{.State.ExitCode}}' "$cname")
[ "$rc" = 0 ] || die "container exit code $rc after SIGTERM"
log "ok: podman stop (SIGTERM): exit code 0"

# --- SIGTERM while a request is in flight -------------------------------------------
port2=$(free_port)
cname2=qatserve-docker-drain-$$
names+=("$cname2")
podman run -d --name "$cname2" --network=host --no-healthcheck --read-only --cap-drop=ALL --user 10001:10001 \
  -e PORT="$port2" -e QATSERVE_TEST_DELAY_MS=1500 -v "$tmp/models:/models:ro" "$IMAGE" >/dev/null
wait_http "http://127.0.0.1:$port2/v2/health/ready" 200 20 || die "drain container not ready"
$PY deploy/wrk/mkbodies.py "$tmp/bodies" >/dev/null
curl -s -o "$tmp/slow.out" -w '%{http_code}' --max-time 20 --data-binary @"$tmp/bodies/predict_b1.json" \
  -H 'Content-Type: application/json' "http://127.0.0.1:$port2/predict" >"$tmp/slow.code" &
cpid=$!
sleep 0.5
t_sig=$(ms)
podman kill -s TERM "$cname2" >/dev/null
wait "$cpid" || true
podman wait "$cname2" >/dev/null 2>&1 || true
t_exit=$(ms)
code=$(cat "$tmp/slow.code")
rc=$(podman inspect -f '{{.State.ExitCode}}' "$cname2")
[ "$code" = 200 ] && grep -q '"outputs"' "$tmp/slow.out" || die "in-flight request during SIGTERM: HTTP $code $(head -c 200 "$tmp/slow.out")"
[ "$rc" = 0 ] || { podman logs "$cname2" | tail; die "drain container exit code $rc"; }
log "ok: SIGTERM with a request in flight: it finished (200), exit 0 $((t_exit - t_sig)) ms after the signal ($(podman logs "$cname2" 2>&1 | grep -o 'drained in [0-9.]* ms' | head -1))"

cleanup
trap - EXIT
left=$(podman ps -a --format '{{.Names}}' | grep -c "docker-.*-$$" || true)
[ "$left" = 0 ] || die "$left containers left behind"
log "PASS in $(( ($(ms) - T0) / 1000 )) s (image step $(( (T1 - T0) / 1000 )) s)"
