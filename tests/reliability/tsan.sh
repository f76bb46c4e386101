#!/usr/bin/env bash
# tsan.sh - `make tsan-test`: the server's integration and abuse tests on the
# ThreadSanitizer build (build/tsan), failing on any race report (reports go
# to files, since the tests kill servers and do not see TSan's exit code).
set -u
cd "$(dirname "$0")/../.."
logs=$(mktemp -d "${TMPDIR:-/tmp}/qs-tsan.XXXXXX")
trap 'rm -rf "$logs"' EXIT
export TSAN_OPTIONS="log_path=$logs/report halt_on_error=0 second_deadlock_stack=1"
rc=0
# Each suite's own exit status decides (pipefail: not tail's), its last line
# is shown.
set -o pipefail
BUILD=build/tsan tests/integration/run.sh | tail -n 1 || rc=1
BUILD=build/tsan tests/reliability/abuse.sh 2>/dev/null | tail -n 1 || rc=1
gout=$(/usr/bin/python3 tests/grpc/test_grpc.py build/tsan 2>&1)
echo "$gout" | tail -n 1
echo "$gout" | grep -q '^grpc: [0-9]* passed, 0 failed$' || rc=1
reports=$(cat "$logs"/report.* 2>/dev/null | grep -c '^WARNING: ThreadSanitizer')
if [ "$reports" -gt 0 ]; then
  cat "$logs"/report.* | head -n 60
  rc=1
fi
echo "tsan-test: $reports ThreadSanitizer reports"
[ $rc -eq 0 ] && echo "tsan-test: 1 passed, 0 failed" || echo "tsan-test: 0 passed, 1 failed"
exit $rc
