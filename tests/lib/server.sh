# server.sh - the one harness for the shell tests (integration, reliability,
# browser, load tests): a private temporary directory, qatserve on a free
# loopback port (--port 0; the port is read from its log), waiting until it
# answers, and cleanup on exit: every process started through the harness is
# killed and waited for, then the directory is removed.
#
# Source it from bash, from the repository root:
#   . tests/lib/server.sh
#   qs_init NAME              QS_TMP = a fresh mktemp -d (qs-NAME.XXXXXX);
#                             installs the EXIT/INT/TERM traps
#   qs_on_exit 'COMMAND'      run COMMAND at exit, before processes are stopped
#                             (e.g. print a log when a test failed)
#   qs_start LOG [FLAGS...]   start $QS_SERVER --host 127.0.0.1 --port 0 FLAGS,
#                             output appended to LOG; wait (10 s) for its
#                             "listening on" line; set QS_PID and QS_PORT.
#                             Returns 1, with the log's tail on stderr, if the
#                             server exited or never listened.
#   qs_track PID              kill PID too at exit (a load generator, a peer)
#   qs_port_from_log LOG PID REGEX   wait for a sed -n REGEX match (\1 = port)
#                             in LOG while PID lives; prints the port
#   qs_wait_ready PORT        GET /v2/health/ready until 200 (10 s)
#   qs_stop [PID [SIGNAL]]    stop PID (default QS_PID) with SIGNAL (default
#                             KILL) and reap it; its exit status is returned
#   qs_reap [PID]             wait for PID (already signalled) to exit; its
#                             exit status is returned
# QS_SERVER defaults to $SERVER, else $BUILD/qatserve (BUILD defaults to build).

QS_SERVER=${QS_SERVER:-${SERVER:-${BUILD:-build}/qatserve}}
QS_TMP=""
QS_PID=""
QS_PORT=""
QS_PIDS=()
QS_AT_EXIT=()

qs_cleanup() {
  local c p
  for c in "${QS_AT_EXIT[@]}"; do eval "$c"; done
  for p in "${QS_PIDS[@]}"; do
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  QS_PIDS=()
  [ -n "$QS_TMP" ] && rm -rf "$QS_TMP"
}

qs_init() {
  QS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/qs-${1:-test}.XXXXXX") || exit 1
  trap qs_cleanup EXIT
  trap 'exit 1' INT TERM
}

qs_on_exit() { QS_AT_EXIT+=("$1"); }

qs_track() { QS_PIDS+=("$1"); }

qs_port_from_log() {
  local log=$1 pid=$2 re=$3 port="" _
  for _ in $(seq 1 200); do
    port=$(sed -n "$re" "$log" 2>/dev/null | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  [ -n "$port" ] || return 1
  echo "$port"
}

qs_start() {
  local log=$1
  shift
  "$QS_SERVER" --host 127.0.0.1 --port 0 "$@" >>"$log" 2>&1 &
  QS_PID=$!
  qs_track "$QS_PID"
  QS_PORT=$(qs_port_from_log "$log" "$QS_PID" 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p')
  if [ -z "$QS_PORT" ]; then
    echo "qs_start: $QS_SERVER did not start listening; last log lines:" >&2
    tail -n 20 "$log" >&2
    return 1
  fi
}

qs_wait_ready() {
  local _
  for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/v2/health/ready")" = 200 ] && return 0
    sleep 0.1
  done
  return 1
}

qs_reap() {
  local pid=${1:-$QS_PID} rc p keep=()
  [ -n "$pid" ] || return 0
  wait "$pid" 2>/dev/null
  rc=$?
  for p in "${QS_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  QS_PIDS=("${keep[@]}")
  [ "$pid" = "$QS_PID" ] && QS_PID=""
  return $rc
}

qs_stop() {
  local pid=${1:-$QS_PID}
  [ -n "$pid" ] || return 0
  kill -"${2:-KILL}" "$pid" 2>/dev/null
  qs_reap "$pid"
}
