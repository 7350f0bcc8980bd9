#!/usr/bin/env bash
# LoRA training references on the GPU machine (issue 7; its torch, transformers and peft):
# the engine trains the adapters of some hf-tiny fixtures for two AdamW steps and exports them
# as PEFT folders (.devbin/lora-check), then tools/make_train_goldens.py writes torch's AdamW
# goldens for the same steps and loads the exported adapters with peft, comparing logits.
# Results under $OUT (train-goldens/*.safetensors go to tests/data/train-goldens).
set -uo pipefail
OUT=${OUT:-/tmp/out}
FIXTURES=${FIXTURES:-qwen3_moe-s1 llama-s1 deepseek_v3-s1}
export LD_LIBRARY_PATH=$PWD/.devbin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
mkdir -p "$OUT/exported" "$OUT/train-goldens"
dirs=()
for f in $FIXTURES; do dirs+=("tests/data/hf-tiny/$f"); done
.devbin/lora-check "$OUT/exported" "${dirs[@]}" || exit 1
# shellcheck disable=SC2086
CUDA_VISIBLE_DEVICES= python3 tools/make_train_goldens.py --fixtures tests/data/hf-tiny \
  --out "$OUT/train-goldens" --check "$OUT/exported" $FIXTURES
