#pragma once
// Packed expert weight formats and the matrix kernels over them, with runtime dispatch.
//
// Formats (all pack 16 output rows into one "row block", zero-padded, K padded to `kp`):
//   BF16 - [block][k/2][16 rows][2 x bf16]      64 bytes per k-pair line
//   INT8 - [block][k/4][16 rows][4 x int8]      symmetric, fp32 scale per output row
//   INT4 - [block][k/8][16 rows][4 bytes]       group-wise along k: byte i of a row's 4-byte
//          lane holds k = 8o+i in its low nibble and k = 8o+4+i in its high nibble; weight =
//          d[g] * q + m[g] with q in 0..15 (symmetric: m = -8 d)
//   Q4K  - GGUF Q4_K repacked without loss: the INT4 nibble layout, group 32 = one Q4_K
//          sub-block, with the six-bit scale and min of every (sub-block, row) as bytes and the
//          super-block's d and dmin per row: weight = d * sc * q - dmin * m, exactly as stored.
//          2.7 % more bytes than the GGUF rows; the kernels multiply 16 rows per weight line
//          (vpdpbusd) instead of ggml's one row at a time.
// A 64-byte line is exactly one zmm register (16 output rows x one VNNI/BF16 pair lane), and 16
// consecutive lines are exactly an AMX "B" tile (16 rows x 64 bytes, VNNI layout), so the
// same packed bytes serve AVX2, AVX-512 and AMX; only the activation side differs.
//
// Gate and up of an expert are packed together (pack_gate_up): block 2i holds gate rows
// [16i, 16i+16) and block 2i+1 the same up rows, so one pass over the tokens' activations yields
// gate and up side by side and the GLU is applied before anything leaves the cache.
//
// Activations are prepared once per matrix input (prepare_acts): fp32 and bf16 copies for BF16,
// per-token symmetric int8 (scale = max|x| / 127, plus x + 128 as uint8 for vpdpbusd whose
// first operand is unsigned: the +128 is compensated with the weights' row sums) for INT8, and
// int8 plus per-group sums (for the zero point / min term) for INT4, and for Q4K int8 with one
// scale per token and 256-element super-block (Q8_K style) plus the per-group sums.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "cpu/gemm.h"

namespace moe {

enum class KernelVariant { Scalar, Avx2, Avx512, Amx };
const char* kernel_variant_name(KernelVariant v);
// The CPU (CPUID) and OS (XSAVE state, AMX permission) can run it.
bool kernel_variant_supported(KernelVariant v);
std::vector<KernelVariant> supported_kernel_variants();
// The best supported variant, or the one MOE_CPU_KERNELS=scalar|avx2|avx512|amx forces (throws
// moe::Error if the CPU cannot run it or the value is unknown). Evaluated once per process.
KernelVariant default_kernel_variant();
// Requires `v` to be supported (moe::Error otherwise).
void require_kernel_variant(KernelVariant v);

enum class PackedFormat { BF16, INT8, INT4, Q4K };
const char* packed_format_name(PackedFormat f);

struct PackOptions {
    PackedFormat format = PackedFormat::BF16;
    int64_t group = 32;        // INT4 group size along k: 32, 64 or 128
    bool int4_min = false;     // INT4: asymmetric d*q + min instead of d*(q - 8)
    bool fp16_scales = false;  // round INT8/INT4 scales (and mins) to fp16 precision
    // BF16: multiply with fp32 activations (weights widened to fp32, FMA) instead of rounding
    // the activations to bf16 for vdpbf16ps/AMX. Exact up to fp32 summation, as fast at decode
    // (bandwidth-bound either way), about half the prefill throughput of the bf16 dot products.
    bool f32_acts = false;
};

constexpr int64_t kRowBlock = 16;

// 64-byte aligned bytes (zmm loads, AMX tile rows, cache lines).
struct AlignedBytes {
    std::unique_ptr<uint8_t[], std::function<void(uint8_t*)>> p;
    size_t size = 0;
    // Zero-filled; on NUMA node `os_node` (NumaNode::os_node) when >= 0, else ordinary memory.
    void allocate(size_t n, int os_node = -1);
    uint8_t* data() const { return p.get(); }
};

struct PackedMatrix {
    PackedFormat format = PackedFormat::BF16;
    int64_t rows = 0;    // logical output rows (for gate_up: rows of gate = rows of up)
    int64_t cols = 0;    // logical input length K
    int64_t kp = 0;      // K padded (multiple of 64 and of the INT4 group)
    int64_t blocks = 0;  // row blocks (gate_up: 2 per 16 rows)
    int64_t group = 0;   // INT4 group size
    bool gate_up = false;
    bool f32_acts = false;  // BF16 only (PackOptions::f32_acts)
    size_t block_bytes = 0;
    AlignedBytes data;
    std::vector<float> scale;     // INT8: [blocks * 16] per row
    std::vector<int32_t> rowsum;  // INT8: [blocks * 16] sum of the row's int8 weights
    std::vector<float> gscale;    // INT4: [blocks][groups][16]
    std::vector<float> gmin;      // INT4: [blocks][groups][16]
    std::vector<uint8_t> ksc;     // Q4K: [blocks][groups][16] six-bit scales
    std::vector<uint8_t> kmin;    // Q4K: [blocks][groups][16] six-bit mins
    std::vector<float> kd;        // Q4K: [blocks][super-blocks][16] d
    std::vector<float> kdmin;     // Q4K: [blocks][super-blocks][16] dmin

    int64_t groups() const { return group ? kp / group : 0; }
    const uint8_t* block(int64_t b) const { return data.data() + size_t(b) * block_bytes; }
    // The fp32 values of row j of block b ([cols] floats): what the kernels multiply with.
    void dequantize_block_row(int64_t b, int64_t j, float* out) const;
    // Logical row r (for gate_up: r < rows is gate, rows <= r < 2 rows is up) as fp32.
    void dequantize_row(int64_t r, float* out) const;
    size_t bytes() const;
};

// Repacks a row-major matrix [rows, cols] (any WeightMatrix: f32/bf16/f16/fp8/GGUF, converted
// with row_to_f32; Q4K takes GGUF Q4_K rows only and copies their bits), in parallel over row
// blocks; with c1 >= 0 only columns [c0, c1) (a NUMA node's slice of a down projection; Q4K:
// multiples of 256). The packed bytes go to NUMA node `os_node` when >= 0.
PackedMatrix pack_matrix(const WeightMatrix& w, const PackOptions& opt, int64_t c0 = 0,
                         int64_t c1 = -1, int os_node = -1);
// gate and up [inter, hidden] interleaved by row block (see above).
PackedMatrix pack_gate_up(const WeightMatrix& gate, const WeightMatrix& up, const PackOptions& opt,
                          int os_node = -1);

// Activations of T tokens prepared for one packed matrix (row stride kp everywhere; bf16/i8
// have tp = T rounded up to 16 rows, zero-padded, for AMX tiles).
struct PackedActs {
    PackedFormat format = PackedFormat::BF16;
    int64_t T = 0, tp = 0, kp = 0, group = 0;
    std::vector<float> f32;      // BF16: [T][kp]
    std::vector<uint16_t> bf16;  // BF16 unless f32_acts: [tp][kp]
    std::vector<int8_t> i8;      // INT8/INT4: [tp][kp]
    std::vector<uint8_t> u8;     // INT8: [T][kp], i8 + 128
    std::vector<float> scale;    // INT8/INT4: [T]; Q4K: [T][kp / 256]
    std::vector<float> gsum;     // INT4/Q4K: [T][groups], sum of i8 over the group (as float)
};
// x: T rows of `w.cols` floats with row stride ldx.
void prepare_acts(const PackedMatrix& w, const float* x, int64_t T, int64_t ldx, PackedActs& a);

// y[t * ldy + b * 16 + j] = row j of block b times token t, for blocks [b0, b1) and t < a.T
// (padding rows of the last block produce 0). Vector kernels for few tokens (weights streamed
// once for up to 4 tokens), token-blocked kernels (AVX2/AVX-512) or AMX tiles for many.
void packed_matmul(KernelVariant v, const PackedMatrix& w, const PackedActs& a, int64_t b0,
                   int64_t b1, float* y, int64_t ldy);

// Convenience for tests and tools: y [T, rows] (gate_up: [T, 2 * blocks/2 * 16] in block
// order) = x · Wᵀ with variant v, parallel over row blocks.
void packed_gemm(KernelVariant v, const PackedMatrix& w, const float* x, int64_t T, float* y,
                 int64_t ldy);

}  // namespace moe
