#!/bin/sh
# accuracy-table.sh - the README's accuracy table on Fashion-MNIST's 10,000
# test images: fp32, post-training static quantization (PTQ), dynamic, and
# QAT at W8A8, W4A8, W4A4 (and W3A3, W2A2 where QAT matters most), each PTQ
# against QAT.
#
#   tools/accuracy-table.sh            (QAT=build/qat OUT=build/acc SEED=1)
#
# One fp32 model (20 epochs) is the starting point of every row: PTQ
# calibrates it on 2048 training images (no training); QAT fine-tunes it for
# 4 epochs with fake quantization. QAT from scratch (20 epochs, the shipped
# recipe) and 16 fp32 + 4 QAT epochs are listed too. Takes minutes (about
# 25 on a busy 2-core machine).
set -eu
QAT=${QAT:-build/qat}
OUT=${OUT:-build/acc}
SEED=${SEED:-1}
mkdir -p "$OUT"
meta() { "$QAT" info "$1" | awk -v k="$2" '$1 == k { print $2 }'; }
run() { echo "+ qat train $*" >&2; "$QAT" train --quiet --seed "$SEED" "$@" >/dev/null; }

run --mode ptq --epochs 20 --out "$OUT/fp32.safetensors" --log "$OUT/fp32.jsonl"
run --mode qat-finetune --epochs 20 --qat-epochs 4 --out "$OUT/recipe.safetensors" \
    --log "$OUT/recipe.jsonl"
run --mode qat --epochs 20 --out "$OUT/qat-scratch.safetensors" --log "$OUT/qat-scratch.jsonl"
for wa in 8/8 4/8 4/4 3/3 2/2; do
  w=${wa%/*} a=${wa#*/}
  run --init "$OUT/fp32.safetensors" --mode ptq --epochs 0 --w-bits "$w" --a-bits "$a" \
      --out "$OUT/ptq-w${w}a${a}.safetensors"
  run --init "$OUT/fp32.safetensors" --mode qat --epochs 4 --lr 1e-4 --w-bits "$w" \
      --a-bits "$a" --out "$OUT/qat-w${w}a${a}.safetensors" --log "$OUT/qat-w${w}a${a}.jsonl"
done

f="$OUT/fp32.safetensors"
printf '| model (seed %s) | fp32 | int8 PTQ | int8 dynamic | int8 QAT |\n' "$SEED"
printf '|---|---|---|---|---|\n'
printf '| fp32 20 epochs -> PTQ / dynamic | %s | %s | %s | |\n' "$(meta "$f" accuracy_fp32)" \
  "$(meta "$f" accuracy_int8)" "$(meta "$f" accuracy_dynamic)"
for wa in 8/8 4/8 4/4 3/3 2/2; do
  w=${wa%/*} a=${wa#*/}
  p="$OUT/ptq-w${w}a${a}.safetensors" q="$OUT/qat-w${w}a${a}.safetensors"
  printf '| W%sA%s: PTQ vs QAT fine-tune 4 epochs (fake-quant %s) | %s | %s | %s | %s |\n' "$w" "$a" \
    "$(meta "$q" accuracy_fakequant)" "$(meta "$q" accuracy_fp32)" "$(meta "$p" accuracy_int8)" \
    "$(meta "$p" accuracy_dynamic)" "$(meta "$q" accuracy_int8)"
done
r="$OUT/recipe.safetensors" s="$OUT/qat-scratch.safetensors"
printf '| 16 fp32 + 4 QAT epochs (fake-quant %s) | %s | | | %s |\n' \
  "$(meta "$r" accuracy_fakequant)" "$(meta "$r" accuracy_fp32)" "$(meta "$r" accuracy_int8)"
printf '| QAT from scratch, 20 epochs = shipped recipe (fake-quant %s) | %s | | | %s |\n' \
  "$(meta "$s" accuracy_fakequant)" "$(meta "$s" accuracy_fp32)" "$(meta "$s" accuracy_int8)"
"$QAT" plot "$OUT/fp32.jsonl" "$OUT/recipe.jsonl" "$OUT/qat-scratch.jsonl" \
  --out "$OUT/training.png" --title "Fashion-MNIST 784-256-128-10: fp32 vs QAT" >&2
