#!/usr/bin/env bash
# Trains a LoRA adapter on stories260K (../shared/fixtures) with the heroine renamed, exports it
# as a llama.cpp LoRA GGUF, and compares llama.cpp's greedy text with the adapter against
# MoE Studio's (issue 7). llama.cpp is built separately from the source in npm
# node-llama-cpp@3.22.1 (never part of this project), e.g.
#   cmake -S llama.cpp -B b -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF && cmake --build b --target llama-completion
#   tools/llamacpp_lora_check.sh build/app/cli/moestudio-cli /path/to/llama-completion
set -euo pipefail
CLI=$1
LC=$2
FIX=${FIX:-../shared/fixtures/stories260K}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
M=$FIX/stories260K.gguf
for s in $(seq 1 40); do
  t=$("$CLI" generate "$M" --prompt "Once upon a time" --max-new-tokens 80 --temperature 0.8 --seed "$s" 2>/dev/null)
  if grep -q Lily <<< "$t"; then printf 'Once upon a time%s\n\n' "${t//Lily/Zara}" >> "$W/data.txt"; fi
done
"$CLI" train "$M" --data "$W/data.txt" --out "$W/run" --targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj \
  --lr 1e-2 --epochs 3 --cutoff 128 --seed 4 --quiet
ours=$("$CLI" generate "$M" --prompt "Once upon a time" --max-new-tokens 48 --greedy --lora "$W/run/adapter.gguf" --llamacpp-attention 2>/dev/null)
theirs=$("$LC" -m "$M" --lora "$W/run/adapter.gguf" -p "Once upon a time" -n 48 --temp 0 -no-cnv --no-warmup 2>/dev/null)
echo "MoE Studio: Once upon a time$ours"
echo "llama.cpp: $theirs"
[ "$(echo "Once upon a time$ours" | xargs)" = "$(echo "$theirs" | xargs)" ] && echo "same text" || { echo "DIFFERENT"; exit 1; }
