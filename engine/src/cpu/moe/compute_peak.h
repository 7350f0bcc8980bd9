#pragma once
// The machine's peak multiply throughput for a kernel variant's inner instruction, measured:
// every thread runs a register-only loop of independent tile / vector products (no memory
// traffic), so the result is what the cores can do at the clock they actually run at. Prefill
// efficiency is quoted against it (bench moe), next to the bound that DRAM bandwidth sets.
#include <string>

#include "cpu/moe/moe_kernels.h"

namespace moe {

struct ComputePeak {
    double tflops = 0.0;      // 1e12 multiply-adds x 2 per second (int8: integer ops)
    std::string instruction;  // e.g. "tdpbf16ps", "vdpbf16ps zmm", "vfmadd231ps ymm"
};

// Which products: fp32 FMA (bf16 weights with fp32 activations), bf16 pairs (vdpbf16ps /
// tdpbf16ps; AVX2 has none and uses FMA), or 8-bit (vpmaddubsw / vpdpbusd / tdpbssd).
enum class PeakOp { F32, Bf16, Int8 };

// threads 0 = parallel_threads(). Scalar variants report 0. AMX has no fp32 products: F32 on
// AMX measures the AVX-512 FMA.
ComputePeak measure_compute_peak(KernelVariant v, PeakOp op, int threads = 0);

}  // namespace moe
