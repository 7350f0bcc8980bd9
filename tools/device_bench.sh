#!/usr/bin/env bash
# Runs the CPU expert benchmarks on the GPU machine (16 cores, AMX) with llama.cpp as the peer.
# Expects, in .devbin/ (carried, never committed): moestudio-cli built here without Qt/NUMA
# (plus libpcre2-8.so.0), moe-kernel-check (bench/moe_kernel_check.cpp, see its header) and
# llama-src.tar.xz (llama.cpp from npm node-llama-cpp@3.22.1, CPU backend only). Writes results
# under $OUT. FORMATS / TOKENS / SKIP_PEER narrow a run.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/.devbin
CLI=$PWD/.devbin/moestudio-cli
THREADS=${THREADS:-16}
lscpu > "$OUT/lscpu.txt"
# Kernel correctness on this CPU (the AMX variant is only testable here).
[ -x .devbin/moe-kernel-check ] && .devbin/moe-kernel-check > "$OUT/kernel_check.txt" 2>&1
echo "kernel check exit $?" >> "$OUT/kernel_check.txt"
# llama.cpp (CPU only) in the background while our benchmarks run would share cores: build first.
[ -z "${SKIP_PEER:-}" ] && ( mkdir -p /tmp/peer && tar -xJf .devbin/llama-src.tar.xz -C /tmp/peer && cd /tmp/peer/llama.cpp &&
  cmake -S . -B b -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF > "$OUT/llama-build.log" 2>&1 &&
  cmake --build b -j"$THREADS" --target llama-bench >> "$OUT/llama-build.log" 2>&1 ) || echo "llama.cpp build failed"
LB=/tmp/peer/llama.cpp/b/bin/llama-bench
# Our operator on one qwen3-30b-a3b layer, all formats, decode and prefill.
for tokens in ${TOKENS:-1 512}; do
  for fmt in ${FORMATS:-bf16 bf16-exact int8 int4 q4_k q8_0}; do
    "$CLI" bench moe --shape qwen3-30b-a3b --format $fmt --tokens $tokens --threads "$THREADS" --memory-gib 24 --json \
      >> "$OUT/bench_moe.jsonl" 2>> "$OUT/bench_moe.err"
  done
done
# Peer: the same layer shape (2 layers, tiny attention) as GGUF in llama.cpp and in our operator.
"$CLI" make-demo --out /tmp/q3 --hidden 2048 --layers 2 --experts 128 --moe-inter 768 --top-k 8 \
  --heads 2 --kv-heads 1 --head-dim 64 > /dev/null
[ -z "${SKIP_PEER:-}" ] && for fmt in q4_k q8_0 bf16; do
  "$CLI" convert /tmp/q3 --out /tmp/q3-$fmt.gguf --type $fmt --quiet
  [ -x "$LB" ] && "$LB" -m /tmp/q3-$fmt.gguf -t "$THREADS" -p 512 -n 64 -r 3 -o json > "$OUT/llama_bench_$fmt.json" 2>> "$OUT/llama_bench.err"
  # The same file through our whole model (llama-bench's pp/tg semantics), same threads.
  "$CLI" bench e2e /tmp/q3-$fmt.gguf --prompt-tokens 512 --gen-tokens 64 --repetitions 3 \
    --threads "$THREADS" --json > "$OUT/e2e_$fmt.json" 2>> "$OUT/e2e.err"
done
echo done
