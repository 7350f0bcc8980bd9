#!/usr/bin/env bash
# Issue 8's acceptance check on the GPU machine: the cost model's predicted decode speed against
# the measured one for placements of a Qwen3-30B-A3B-shaped model (the file that
# tools/device_hybrid_bench.sh makes: run it with PHASE=prep first, same LAYERS). Steps:
#   1. `placement calibrate` measures this machine's rates on the model (GPU budget BUDGET);
#   2. the workload is the one the measurement replays: `bench e2e --usage-out` records the
#      expert telemetry of its own seeded token stream (every expert on the CPU);
#   3. for each placement — every expert on the CPU, uniform and frequency top-N at
#      PLACE_BUDGET GiB — `placement plan --rates` predicts decode tok/s (with that telemetry)
#      and `bench e2e --placement` measures it, recording the routing it actually saw;
#   4. prints predicted, measured and the error of each, with the share of routed experts the
#      GPU served in the prediction and in the measured run (they differ when the GPU's
#      rounding changes the greedy tokens); results (JSON) under $OUT.
# A workload recorded from other text (`placement record`) is the planner's held-out case, not
# this check's: a random-weight model's greedy continuations of different starts route to
# different experts.
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
bench() {  # placement file, usage out, json out
  "$CLI" bench e2e "$M" --placement "$1" --prompt-tokens 0 --gen-tokens 64 --repetitions 3 \
    --threads "$THREADS" --defer-experts "$DEFER" --seed 1 --usage-out "$2" --json
}
"$CLI" placement plan "$M" --gpu-budget "$BUDGET" --cpu-experts all --out "$OUT/workload.placement.json" \
  > /dev/null 2>&1
bench "$OUT/workload.placement.json" "$OUT/usage.json" > /dev/null 2> "$OUT/workload.err"
check() {  # name, plan options...
  local name=$1; shift
  "$CLI" placement plan "$M" "$@" --usage "$OUT/usage.json" --out "$OUT/$name.placement.json" \
    --rates "$OUT/rates.json" --defer-experts "$DEFER" --json > "$OUT/$name.plan.json" 2> "$OUT/$name.plan.err"
  bench "$OUT/$name.placement.json" "$OUT/$name.usage.json" > "$OUT/$name.bench.json" 2> "$OUT/$name.bench.err"
  python3 - "$OUT/$name.plan.json" "$OUT/$name.bench.json" "$name" "$OUT/$name.placement.json" \
    "$OUT/$name.usage.json" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
pred = json.loads(text[text.rindex('{\n "prediction"'):])["prediction"]
meas = [r for r in json.load(open(sys.argv[2])) if r["n_gen"] > 0][0]
layers = json.load(open(sys.argv[4]))["layers"]
decode = json.load(open(sys.argv[5]))["decode"]
on_gpu = sum(row[e] for row, layer in zip(decode, layers) for e in layer.get("gpu_experts", []))
seen = 100 * on_gpu / max(1, sum(map(sum, decode)))
p, m = pred["decode_tok_s"], meas["avg_ts"]
print(f"{sys.argv[3]:>10}: predicted {p:7.1f} tok/s, measured {m:7.1f} ± {meas['stddev_ts']:.1f}, "
      f"error {100 * (p - m) / m:+.1f} %, GPU hit rate {100 * pred['gpu_hit_rate']:.0f} % "
      f"predicted, {seen:.0f} % measured")
PY
}
check all-cpu --gpu-budget "$BUDGET" --cpu-experts all
check uniform --gpu-budget "$PLACE_BUDGET" --strategy uniform
check frequency --gpu-budget "$PLACE_BUDGET" --strategy frequency
