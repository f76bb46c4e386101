#!/usr/bin/env bash
# internal_prefix.sh - gives libqat's internal symbols the internal prefix:
# every global symbol defined in libqat.a that starts with qat_ but is not
# declared in core/qat.h or core/qat_train.h is renamed qat_X -> qat__X, as a
# whole identifier, in every C source and header of the repository. Re-run it
# after a merge brings new internal functions (then `make` and
# tests/lib/check_symbols.sh). Needs a built libqat.a.
#   tests/lib/internal_prefix.sh [build/libqat.a]
set -eu
lib=${1:-build/libqat.a}
cd "$(dirname "$0")/../.."
make --no-print-directory "$lib" >/dev/null
public=$(cat core/qat.h core/qat_train.h | grep -o '\bqat_[A-Za-z0-9_]*' | sort -u)
syms=$(nm -g --defined-only "$lib" | awk 'NF == 3 { print $3 }' | grep '^qat_' | grep -v '^qat__' | sort -u |
  grep -vxF "$public" || true)
[ -n "$syms" ] || { echo "internal_prefix: nothing to rename"; exit 0; }
expr=""
for s in $syms; do expr="$expr s/\\b$s\\b/qat__${s#qat_}/g;"; done
files=$(git ls-files '*.c' '*.h' | grep -v '^tests/ort/')
# shellcheck disable=SC2086
sed -i -e "$expr" $files
echo "internal_prefix: renamed $(echo $syms | wc -w): $(echo $syms)"
