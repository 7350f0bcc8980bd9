#!/usr/bin/env bash
# Every check that needs the GPU machine, in one run (issue 5's "one documented script"):
# the CUDA kernels against their CPU references, the GPU path against the transformers goldens
# (every hf-tiny and hf-extra fixture, four expert placements, two precisions), then the CPU
# expert kernels on that machine's ISA (AMX). Expects the binaries of tools/build-device-binaries.sh in .devbin/. Results go to
# $OUT (default /tmp/out); the exit status is non-zero when any check fails.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/.devbin
status=0
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
.devbin/cuda-kernel-check > "$OUT/cuda_kernel_check.txt" 2>&1 || status=1
.devbin/hybrid-check > "$OUT/hybrid_check.txt" 2>&1 || status=1
.devbin/moe-kernel-check > "$OUT/moe_kernel_check.txt" 2>&1 || status=1
tail -n 1 "$OUT/cuda_kernel_check.txt" "$OUT/hybrid_check.txt" "$OUT/moe_kernel_check.txt"
exit $status
