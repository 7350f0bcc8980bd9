#!/usr/bin/env bash
# The hybrid CPU/GPU benchmark on the GPU machine (issue 5): a model of a published shape with
# random weights made by `moestudio-cli make-demo --shape SHAPE` (qwen3-30b-a3b: hidden 2048,
# 32 heads / 4 KV heads of 128, 128 experts of 768, top-8, 48 layers; deepseek-v2-lite: MLA,
# 64 experts of 1408, top-6, 2 shared, 27 layers; LAYERS= keeps fewer) as Q4_K GGUF (the bf16
# folder is made in /dev/shm and removed after conversion: the disk holds 64 GB), run by llama.cpp
# with every routed expert on the CPU (-ngl 99 -ot exps=CPU; built here with CUDA for sm_90
# from .devbin/llama-src.tar.xz, the source of npm node-llama-cpp@3.22.1) and by moestudio-cli
# bench e2e with the same split (--cpu-experts all), then our decode rate against the GPU
# expert budget. Everything it makes stays on that machine, under $WORK (ignored by git).
#   PHASE=prep   build llama.cpp and make the model (about 5 minutes)
#   PHASE=bench  the benchmarks (results as JSON under $OUT; about 2 minutes)
#   default      both (the machine is not kept between calls; about 8 minutes)
# FULL=1 adds prefill without streaming and the CPU-only run; BUDGETS= the GPU budgets (GiB);
# DEFERS= expert deferral amounts to measure decode with.
# MOE_HYBRID_TRACE=1 prints the prefill cost model's choice per MoE layer to $OUT/ours.err.
set -uo pipefail
OUT=${OUT:-/tmp/out}
WORK=${WORK:-/tmp/moe-devwork}  # outside the working tree: kept while the machine stays warm
SHAPE=${SHAPE:-qwen3-30b-a3b}
LAYERS=${LAYERS:-8}
THREADS=${THREADS:-16}
mkdir -p "$OUT" "$WORK"
export LD_LIBRARY_PATH=$PWD/.devbin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
CLI=$PWD/.devbin/moestudio-cli
M=$WORK/$SHAPE-l$LAYERS
SRC=/dev/shm/$SHAPE-l$LAYERS
LB=$WORK/llama.cpp/b/bin/llama-bench
# A llama-bench built elsewhere for this machine (sm_90, -march=sapphirerapids) may be carried
# as .peer/llama-bench.xz instead of building it here (five minutes of GPU-machine time).
if [ -f .peer/llama-bench.xz ] && [ ! -x "$LB" ]; then
  mkdir -p "$(dirname "$LB")" && xz -dc .peer/llama-bench.xz > "$LB" && chmod +x "$LB"
fi

if [ "${PHASE:-all}" != bench ]; then
  if [ -z "${SKIP_PEER:-}" ] && [ ! -x "$LB" ]; then
    ( tar -xJf .devbin/llama-src.tar.xz -C "$WORK" && cd "$WORK/llama.cpp" &&
      cmake -S . -B b -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF \
        > "$OUT/llama-build.log" 2>&1 &&
      cmake --build b -j"$THREADS" --target llama-bench >> "$OUT/llama-build.log" 2>&1 ) &
    BUILD=$!
  fi
  if [ ! -f "$M.gguf" ]; then
    "$CLI" make-demo --out "$SRC" --shape "$SHAPE" --layers "$LAYERS" > "$OUT/make-demo.log" 2>&1
    "$CLI" convert "$SRC" --out "$M.gguf" --type q4_k --quiet >> "$OUT/make-demo.log" 2>&1
    rm -rf "$SRC"
  fi
  [ -n "${BUILD:-}" ] && wait "$BUILD"
  ls -la "$WORK" "$LB"
  tail -n 3 "$OUT/llama-build.log" 2>/dev/null
  [ "${PHASE:-all}" = prep ] && exit 0
fi

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
lscpu > "$OUT/lscpu.txt"
# Peer: all routed experts on the CPU, everything else on the GPU (SKIP_PEER=1: not rebuilt
# nor run).
[ -z "${SKIP_PEER:-}" ] && "$LB" -m "$M.gguf" -ngl 99 -ot "exps=CPU" -t "$THREADS" -p 512,2048 -n 64 -r 3 -o json \
  > "$OUT/llama_cpu_moe.json" 2> "$OUT/llama_cpu_moe.err"
# Ours, the same split; prefill in one chunk up to 2048 tokens (the cost model choosing per
# layer between the CPU and streaming the experts to the GPU). MOE_HYBRID_PROFILE=1: where the
# decode step's time goes (printed to ours.err).
export MOE_HYBRID_PROFILE=1
ours() { "$CLI" bench e2e "$M.gguf" --repetitions 3 --threads "$THREADS" --json "$@"; }
for pp in 512 2048; do
  echo "== pp$pp tg64 cpu-experts all" >> "$OUT/ours.err"
  ours --prompt-tokens $pp --gen-tokens 64 --gpu-budget 100 --cpu-experts all \
    --prefill-chunk 2048 > "$OUT/ours_cpu_experts_pp$pp.json" 2>> "$OUT/ours.err"
done
# Decode steps launched kernel by kernel (a stream synchronisation per host step), and replayed
# from CUDA graphs with host-function nodes instead of signalled host steps.
echo "== tg64 cuda graphs off" >> "$OUT/ours.err"
ours --prompt-tokens 0 --gen-tokens 64 --gpu-budget 100 --cpu-experts all \
  --cuda-graphs off > "$OUT/ours_cpu_experts_launched.json" 2>> "$OUT/ours.err"
echo "== tg64 host-function nodes" >> "$OUT/ours.err"
ours --prompt-tokens 0 --gen-tokens 64 --gpu-budget 100 --cpu-experts all \
  --signalled-steps off > "$OUT/ours_cpu_experts_hostnodes.json" 2>> "$OUT/ours.err"
if [ -n "${FULL:-}" ]; then
  ours --prompt-tokens 512 --gen-tokens 0 --gpu-budget 100 --cpu-experts all \
    --prefill-chunk 2048 --stream-experts never > "$OUT/ours_cpu_experts_nostream.json" 2>> "$OUT/ours.err"
  ours --prompt-tokens 512 --gen-tokens 64 > "$OUT/ours_cpu_only.json" 2>> "$OUT/ours.err"
fi
# Expert deferral (off by default): each token's N lowest-weighted experts of a layer computed
# on the CPU while the next layer runs on the GPU. DEFERS= the values of N.
for d in ${DEFERS:-}; do
  echo "== tg64 defer $d" >> "$OUT/ours.err"
  ours --prompt-tokens 0 --gen-tokens 64 --gpu-budget 100 --cpu-experts all \
    --defer-experts "$d" > "$OUT/ours_cpu_experts_defer$d.json" 2>> "$OUT/ours.err"
done
# Decode against the GPU budget (experts fill what the non-expert weights leave).
for gib in ${BUDGETS:-4 8 12}; do
  for graphs in ${GRAPHS:-on}; do
    echo "== tg64 budget $gib graphs $graphs" >> "$OUT/ours.err"
    ours --prompt-tokens 0 --gen-tokens 64 --gpu-budget $gib --cpu-experts auto \
      --cuda-graphs $graphs > "$OUT/ours_budget_${gib}_graphs_$graphs.json" 2>> "$OUT/ours.err"
  done
done
for f in "$OUT"/ours*.json; do
  python3 -c "import json,sys
for r in json.load(open(sys.argv[1])): print(sys.argv[1].split('/')[-1], r['n_prompt'], r['n_gen'], round(r['avg_ts'],1), round(r['stddev_ts'],1))" "$f"
done
[ -z "${SKIP_PEER:-}" ] && grep -h '"avg_ts"\|n_prompt\|n_gen' "$OUT/llama_cpu_moe.json" | tr -d ' \n'; echo
echo done
