#pragma once
// Random but valid GGUF blocks for kernel tests: random bytes everywhere (every bit pattern of
// the quants and packed sub-block scales is valid), then the fp16 super-scales set to sane
// values (random bytes there could be Inf/NaN) and MXFP4 exponents kept moderate.
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "formats/ggml_types.h"

namespace moetest {

// The types with SIMD row dots and tiled GEMMs.
inline constexpr moe::GgmlType kSimdGgufTypes[] = {moe::GgmlType::Q8_0,  moe::GgmlType::Q4_0,
                                                   moe::GgmlType::MXFP4, moe::GgmlType::Q4_K,
                                                   moe::GgmlType::Q5_K,  moe::GgmlType::Q6_K};

bool is_k_quant(moe::GgmlType t);

// `rows` rows of n values each, `stride` bytes apart.
std::vector<uint8_t> random_gguf_rows(std::mt19937& rng, moe::GgmlType t, int64_t n, int64_t rows,
                                      size_t stride);

// Row lengths worth testing for a type: several superblocks for K-quants, odd block counts
// for the 32-value formats.
std::vector<int64_t> gguf_test_lengths(moe::GgmlType t);

// The bit pattern of a float, for bit-identity checks.
uint32_t float_bits(float f);

}  // namespace moetest
