#pragma once
// Internal: the per-variant kernel tables. Each variant lives in its own .cpp compiled with GCC
// target attributes (not global -march flags), so one binary runs on any x86-64 CPU and only
// calls into a variant after the dispatcher checked CPUID.
#include <cstdint>

#include "cpu/moe/moe_kernels.h"

namespace moe::kern {

// Computes blocks [b0, b1) for all tokens of `a` (see packed_matmul).
using MatmulFn = void (*)(const PackedMatrix& w, const PackedActs& a, int64_t b0, int64_t b1,
                          float* y, int64_t ldy);

struct KernelTable {
    MatmulFn bf16 = nullptr, int8 = nullptr, int4 = nullptr, q4k = nullptr;
};

// The scalar Q4K kernel (the reference the SIMD ones are tested against).
void q4k_scalar(const PackedMatrix& w, const PackedActs& a, int64_t b0, int64_t b1, float* y,
                int64_t ldy);

const KernelTable& scalar_kernels();
const KernelTable& avx2_kernels();
const KernelTable& avx512_kernels();
const KernelTable& amx_kernels();

// Asks Linux for permission to use AMX tile data (once per process); false if refused.
bool request_amx_permission();
// Loads the tile layout the AMX kernels use (tmm0-7, each 16 rows x 64 bytes) on this thread.
// Only after request_amx_permission() succeeded (kernels_amx.cpp; also the peak probe's).
void configure_amx_tiles();

// Bytes of the weight layout (shared by the packer, the scalar kernels and dequantization).
inline int64_t bf16_index(int64_t k, int64_t j) {  // in uint16 units within a block
    return (k >> 1) * 32 + j * 2 + (k & 1);
}
inline int64_t int8_index(int64_t k, int64_t j) {  // bytes within a block
    return (k >> 2) * 64 + j * 4 + (k & 3);
}
// INT4: byte within a block and whether k sits in the high nibble.
inline int64_t int4_byte(int64_t k, int64_t j) {
    return (k >> 3) * 64 + j * 4 + (k & 3);
}
inline bool int4_high(int64_t k) {
    return (k & 4) != 0;
}
// The 4-bit value (0..15) of row j at position k in an INT4/Q4K block.
inline int int4_value(const uint8_t* block, int64_t k, int64_t j) {
    const uint8_t byte = block[int4_byte(k, j)];
    return int4_high(k) ? byte >> 4 : byte & 15;
}

}  // namespace moe::kern
