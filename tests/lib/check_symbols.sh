#!/usr/bin/env bash
# check_symbols.sh - libqat exports only its public API: every global symbol
# defined in libqat.a is declared in core/qat.h or core/qat_train.h, or
# carries the internal prefix qat__ (internal headers: core/internal.h,
# kernels.h, layer.h, model.h, train_internal.h). Fails naming each symbol
# that does neither (rename it with tests/lib/internal_prefix.sh).
#   tests/lib/check_symbols.sh build/libqat.a      (make symbols-test, in make test)
set -u
lib=${1:-build/libqat.a}
cd "$(dirname "$0")/../.."
[ -f "$lib" ] || { echo "symbols-test: $lib missing"; exit 1; }
public=$(cat core/qat.h core/qat_train.h 2>/dev/null | grep -o '\bqat_[A-Za-z0-9_]*' | sort -u)
bad=0
n=0
for s in $(nm -g --defined-only "$lib" | awk 'NF == 3 { print $3 }' | sort -u); do
  n=$((n + 1))
  case "$s" in
    qat__*) continue ;;
    # Made by the compiler in sanitizer builds (ASan's one-definition-rule
    # markers, instrumentation hooks), not by our code.
    __odr_asan.*|__asan_*|__ubsan_*|__tsan_*|__sancov_*) n=$((n - 1)); continue ;;
  esac
  if ! grep -qx "$s" <<<"$public"; then
    echo "symbols-test: $s is exported by $lib but is not public API (declare it in core/qat.h or name it qat__${s#qat_})"
    bad=$((bad + 1))
  fi
done
echo "symbols-test: $n exported symbols, $bad not public and without the qat__ prefix"
[ "$bad" -eq 0 ]
