#!/usr/bin/env bash
# Issue 7's training benchmark on the GPU machine: LoRA training tokens/s of moestudio-cli
# train (experts on the CPU) against transformers + peft with the experts offloaded to the
# CPU by accelerate (tools/peft_train_bench.py), on the same DeepSeek-V2-Lite-shaped
# checkpoint with random weights (`make-demo --shape deepseek-v2-lite`, LAYERS of its 27, bf16
# safetensors in /dev/shm) and the same text, sequence length, LoRA rank and targets.
# Results (JSON and logs) under $OUT. Ours runs CPU-only (training on the GPU is not written).
set -uo pipefail
OUT=${OUT:-/tmp/out}
LAYERS=${LAYERS:-8}
STEPS=${STEPS:-6}
SEQ=${SEQ:-256}
TARGETS=${TARGETS:-q_proj,o_proj}
THREADS=${THREADS:-16}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/.devbin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
CLI=$PWD/.devbin/moestudio-cli
M=/dev/shm/dsv2lite-l$LAYERS
[ -d "$M" ] || "$CLI" make-demo --out "$M" --shape deepseek-v2-lite --layers "$LAYERS" > "$OUT/make-demo.log" 2>&1
DATA=$OUT/stories.txt
for i in $(seq 1 400); do
  echo "Once upon a time there was a little robot number $i who loved to count the stars in the sky."
done > "$DATA"
# Ours: packing to full sequences of SEQ tokens, one sequence per step.
"$CLI" train "$M" --data "$DATA" --format text --out "$OUT/ours" --steps "$STEPS" --cutoff "$SEQ" \
  --packing --targets "$TARGETS" --rank 8 --alpha 16 --threads "$THREADS" --quiet \
  > "$OUT/ours.log" 2>&1
python3 - "$OUT/ours/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
steps = [r for r in rows if "tokens_per_s" in r][1:] or rows
print("ours: %.1f tokens/s (steps 2..%d)" % (sum(r["tokens_per_s"] for r in steps) / len(steps), len(rows)))
PY
python3 tools/peft_train_bench.py --model "$M" --data "$DATA" --steps "$STEPS" --seq-len "$SEQ" \
  --targets "$TARGETS" --out "$OUT/peft.json" > "$OUT/peft.log" 2>&1
tail -n 1 "$OUT/peft.log"
