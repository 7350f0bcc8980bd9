#!/usr/bin/env bash
# One-off final device run (budget-limited): checks + our benchmarks on the run-5 model shape.
export LD_LIBRARY_PATH=$PWD/.devbin
CLI=$PWD/.devbin/moestudio-cli
W=$PWD/.devwork; M=$W/q3-30b-a3b-l8; mkdir -p $W
( "$CLI" make-demo --out $M --hidden 2048 --layers 8 --experts 128 --moe-inter 768 --top-k 8 --heads 32 --kv-heads 4 --head-dim 128 > /dev/null && "$CLI" convert $M --out $M.gguf --type q4_k --quiet && rm -rf $M ) & P=$!
timeout 25 .devbin/cuda-kernel-check > $OUT/cuda_kernel_check.txt 2>&1
timeout 110 .devbin/hybrid-check > $OUT/hybrid_check.txt 2>&1; echo "exit $?" >> $OUT/hybrid_check.txt
wait $P
B=(bench e2e $M.gguf --threads 16 --repetitions 3 --json --prefill-chunk 2048)
run() { local name=$1; shift; timeout 45 "$CLI" "${B[@]}" "$@" > $OUT/$name.json 2>> $OUT/$name.err; }
MOE_HYBRID_TRACE=1 run e2e_cpu_pp2048_eager --gpu-budget 100 --cpu-experts all --prompt-tokens 2048 --gen-tokens 64 --cuda-graphs off
run e2e_cpu_pp512_graphs --gpu-budget 100 --cpu-experts all --prompt-tokens 512 --gen-tokens 64 --cuda-graphs on
for gib in 4 8 12; do run e2e_budget${gib}_eager --gpu-budget $gib --cpu-experts auto --prompt-tokens 0 --gen-tokens 64 --cuda-graphs off; done
run e2e_budget8_graphs --gpu-budget 8 --cpu-experts auto --prompt-tokens 0 --gen-tokens 64 --cuda-graphs on
grep -v " ok" $OUT/cuda_kernel_check.txt | tail -4
grep -c " ok" $OUT/hybrid_check.txt; grep -v " ok" $OUT/hybrid_check.txt | tail -8
for f in $OUT/e2e*.json; do python3 -c "import json,sys
for r in json.load(open(sys.argv[1])): print(sys.argv[1].split('/')[-1], r['n_prompt'], r['n_gen'], round(r['avg_ts'],1), round(r['stddev_ts'],1), r['placement'][11:80])" "$f"; done
grep -c streamed $OUT/e2e_cpu_pp2048_eager.err; grep -c "on the CPU" $OUT/e2e_cpu_pp2048_eager.err; grep "T=2048" $OUT/e2e_cpu_pp2048_eager.err | head -3; grep -i error $OUT/*.err | head -3
