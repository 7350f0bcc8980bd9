#!/usr/bin/env bash
# Issue 8's acceptance check on the GPU machine: the cost model's predicted decode speed against
# the measured one for placements of a Qwen3-30B-A3B-shaped model (the file that
# tools/device_hybrid_bench.sh makes: run it with PHASE=prep first, same LAYERS). Steps:
#   1. `placement calibrate` measures this machine's rates on the model (GPU budget BUDGET);
#   2. `placement record` routes PROMPTS through it to get a workload's expert telemetry;
#   3. for each placement — every expert on the CPU, uniform and frequency top-N at
#      PLACE_BUDGET GiB — `placement plan --rates` predicts decode tok/s (with the workload's
#      telemetry) and `bench e2e --placement` measures it;
#   4. prints predicted, measured and the error of each; results (JSON) under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}
WORK=${WORK:-/tmp/moe-devwork}
SHAPE=${SHAPE:-qwen3-30b-a3b}
LAYERS=${LAYERS:-8}
THREADS=${THREADS:-16}
BUDGET=${BUDGET:-100}
PLACE_BUDGET=${PLACE_BUDGET:-6}
DEFER=${DEFER:-0}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/.devbin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
CLI=$PWD/.devbin/moestudio-cli
M=$WORK/$SHAPE-l$LAYERS.gguf
[ -f "$M" ] || { echo "no $M: run PHASE=prep LAYERS=$LAYERS tools/device_hybrid_bench.sh first"; exit 1; }
"$CLI" placement calibrate "$M" --gpu-budget "$BUDGET" --threads "$THREADS" \
  --out "$OUT/rates.json" > "$OUT/calibrate.log" 2>&1 || { tail "$OUT/calibrate.log"; exit 1; }
# A workload: short prompts continued greedily (the demo vocabulary is bytes: any text works).
PROMPTS=$OUT/prompts.txt
for i in $(seq 1 16); do echo "Write a function number $i that sorts a list of numbers."; done > "$PROMPTS"
"$CLI" placement record "$M" --prompts "$PROMPTS" --max-new-tokens 32 \
  --usage-out "$OUT/usage.json" --out "$OUT/trace.jsonl" > "$OUT/record.log" 2>&1
check() {  # name, plan options...
  local name=$1; shift
  "$CLI" placement plan "$M" "$@" --usage "$OUT/usage.json" --out "$OUT/$name.placement.json" \
    --rates "$OUT/rates.json" --defer-experts "$DEFER" --json > "$OUT/$name.plan.json" 2> "$OUT/$name.plan.err"
  "$CLI" bench e2e "$M" --placement "$OUT/$name.placement.json" --prompt-tokens 0 --gen-tokens 64 \
    --repetitions 3 --threads "$THREADS" --defer-experts "$DEFER" --json > "$OUT/$name.bench.json" 2> "$OUT/$name.bench.err"
  python3 - "$OUT/$name.plan.json" "$OUT/$name.bench.json" "$name" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
pred = json.loads(text[text.rindex('{\n "prediction"'):])["prediction"]
meas = [r for r in json.load(open(sys.argv[2])) if r["n_gen"] > 0][0]
p, m = pred["decode_tok_s"], meas["avg_ts"]
print(f"{sys.argv[3]:>10}: predicted {p:7.1f} tok/s, measured {m:7.1f} ± {meas['stddev_ts']:.1f}, "
      f"error {100 * (p - m) / m:+.1f} %, GPU hit rate {100 * pred['gpu_hit_rate']:.0f} %")
PY
}
check all-cpu --gpu-budget "$BUDGET" --cpu-experts all
check uniform --gpu-budget "$PLACE_BUDGET" --strategy uniform
check frequency --gpu-budget "$PLACE_BUDGET" --strategy frequency
