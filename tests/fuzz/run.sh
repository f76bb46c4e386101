#!/usr/bin/env bash
# run.sh - runs each libFuzzer target for SECONDS from its committed seed
# corpus (tests/fuzz/corpus/NAME), its crash regressions
# (tests/fuzz/regress/NAME) and the corpus it grew before (build/fuzz/corpus/NAME),
# with its dictionary (tests/fuzz/NAME.dict). Prints executions per target
# and fails if any target crashed (the input is left in build/fuzz/crash-NAME-*).
#   tests/fuzz/run.sh SECONDS [NAME...]        (make fuzz / make fuzz-ci)
set -u
cd "$(dirname "$0")/../.."
secs=${1:-30}
shift || true
dir=build/fuzz
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for t in "$dir"/fuzz_*; do [ -x "$t" ] && names+=("$(basename "$t" | sed 's/^fuzz_//')"); done
fi
failed=0
total=0
for n in "${names[@]}"; do
  t=$dir/fuzz_$n
  [ -x "$t" ] || { echo "fuzz: $t missing"; failed=$((failed + 1)); continue; }
  mkdir -p "$dir/corpus/$n"
  args=(-max_total_time="$secs" -print_final_stats=1 -max_len=16384 -timeout=10 -rss_limit_mb=2048
        -artifact_prefix="$dir/crash-$n-")
  [ -f "tests/fuzz/$n.dict" ] && args+=(-dict="tests/fuzz/$n.dict")
  dirs=("$dir/corpus/$n" "tests/fuzz/corpus/$n")
  [ -d "tests/fuzz/regress/$n" ] && dirs+=("tests/fuzz/regress/$n")
  "$t" "${args[@]}" "${dirs[@]}" >"$dir/log-$n.txt" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log-$n.txt" | tail -n 1)
  total=$((total + 1))
  if [ $rc -ne 0 ]; then
    failed=$((failed + 1))
    echo "fuzz: $n CRASHED after ${execs:-?} executions (log: $dir/log-$n.txt)"
    grep -E 'ERROR|SUMMARY|refused|accepted|mismatch|Assertion' "$dir/log-$n.txt" | head -n 5
  else
    echo "fuzz: $n ${execs:-?} executions in $secs s, no crash"
  fi
done
echo "fuzz: $((total - failed)) passed, $failed failed"
[ $failed -eq 0 ]
