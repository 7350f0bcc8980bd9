#!/usr/bin/env bash
# Decode schedules of the hybrid path side by side on the GPU machine (docs/benchmarks.md):
# every routed expert on the CPU, tg64, with MOE_HYBRID_PROFILE=1 so each run also says where
# a decode step's time went. Needs the model of tools/device_hybrid_bench.sh (PHASE=prep).
#   VARIANTS: a list of "name|environment|extra flags" lines (default: the ones below).
set -uo pipefail
OUT=${OUT:-/tmp/out}
WORK=${WORK:-/tmp/moe-devwork}
SHAPE=${SHAPE:-qwen3-30b-a3b}
LAYERS=${LAYERS:-8}
THREADS=${THREADS:-16}
BUDGET=${BUDGET:-100}
EXPERTS=${EXPERTS:-all}
export LD_LIBRARY_PATH=$PWD/.devbin
M=$WORK/$SHAPE-l$LAYERS.gguf
DEFAULT_VARIANTS='synced||--signalled-steps off
signalled||
graph-memops||--cuda-graphs on
signalled-kernels|MOE_HOST_SIGNAL=kernels|
graph-kernels|MOE_HOST_SIGNAL=kernels|--cuda-graphs on'
while IFS='|' read -r name envs flags; do
  [ -z "$name" ] && continue
  case " $flags " in *" --threads "*) threads=() ;; *) threads=(--threads "$THREADS") ;; esac
  # shellcheck disable=SC2086
  r=$(env MOE_HYBRID_PROFILE=1 $envs .devbin/moestudio-cli bench e2e "$M" --prompt-tokens 0 \
      --gen-tokens 64 --repetitions 3 "${threads[@]}" --gpu-budget "$BUDGET" \
      --cpu-experts "$EXPERTS" $flags --json 2> "$OUT/variant.err")
  tg=$(python3 -c "import json,sys; r=json.loads(sys.argv[1])[-1]; print(round(r['avg_ts'],1), '+-', round(r['stddev_ts'],1))" "$r" 2>/dev/null || echo "failed: $(tail -c 300 "$OUT/variant.err")")
  echo "$name [$envs $flags]: tg64 $tg"
  grep -h "profile" "$OUT/variant.err" | sed 's/^/    /'
done <<< "${VARIANTS:-$DEFAULT_VARIANTS}"
rm -f "$OUT/variant.err"
