#pragma once
// Tiled GEMM over GGUF-native expert weights for the multi-token (prefill) case.
//
//   out[t * ldo + r] = vec_dot(type, weight_rows + r * row_bytes, act + t * act_row, n)
//                      for r < rows, t < tokens
//
// where every activation row is already quantized to vec_dot_type(type). Unlike the row
// kernels of gguf_row_dot.h (one call per token, so every weight block is unpacked once per
// token), a GEMM unpacks each weight block once per tile of tokens: a tile of weight rows is
// decoded (nibbles split, bytes permuted / transposed, sub-block scales expanded) into L1
// scratch and dotted against up to 8 tokens before moving on.
//
// Results are bit-identical with the scalar moe::vec_dot per (row, token): the kernels keep
// ggml's scalar float operation order (see gguf_simd_impl.h for the scheme).
//
// Types: Q4_K, Q5_K, Q6_K and Q8_0 (variant "avx512vnni": AVX512_VNNI + AVX512VL/BW on 256-bit
// vectors, function-level target attributes, chosen at run time by CPUID, as gguf_simd_kernels.h
// does). Other types, and CPUs without the variant, get a null `gemm` and callers keep the row
// kernels. MOE_GGUF_SIMD=<variant> in the environment (see gguf_simd_kernels.h) disables the GEMM
// unless it names the GEMM's variant; MOE_GGUF_GEMM=0 disables it (row kernels only, for
// comparisons).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "formats/ggml_types.h"

namespace moe {

using GgufGemmFn = void (*)(const void* weight_rows, size_t row_bytes, int64_t rows,
                            const void* act, size_t act_row, int64_t tokens, int64_t n, float* out,
                            int64_t ldo);

struct GgufGemm {
    GgufGemmFn gemm;      // null: no GEMM for this type / CPU
    const char* variant;  // "avx512vnni" or "none"
};

// Fewest tokens per expert for which the fused MoE operator uses a GEMM (row kernels below).
inline constexpr int64_t kGgufGemmMinTokens = 4;

// The best GEMM this CPU supports for `type` (cached; thread-safe), or a null gemm.
GgufGemm gguf_gemm(GgmlType type);

struct GgufGemmVariant {
    const char* name;
    bool supported;  // this CPU can run it
};
// All compiled-in GEMM variants, best first (for tests and benchmarks).
std::vector<GgufGemmVariant> gguf_gemm_variants();

// The kernel of `variant` for `type`, or a null gemm. Does not check CPU support.
GgufGemm gguf_gemm_variant(GgmlType type, const char* variant);

}  // namespace moe
