#pragma once
// Row dot products for weights stored as floats (F32, F16, BF16): AVX2 + FMA + F16C when the
// CPU has them (four rows per pass sharing the activation loads, fp32 accumulation), a scalar
// loop otherwise. Used by gemm_xwt for Hugging Face weights (fp32 activations) and registered
// as the GGUF row-dot kernels of the float types (activations in the weights' type, as
// llama.cpp multiplies them).
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace moe {

// out[r] = sum_k W[r][k] * x[k] for `rows` rows of type wt (F32, F16 or BF16) starting at w,
// row_bytes apart; x: n fp32 values.
void float_rows_dot(DType wt, const void* w, size_t row_bytes, int64_t rows, const float* x,
                    int64_t n, float* out);

// y[t * ldy + r] = sum_k W[r][k] * x[t * ldx + k] for t < T, r < rows: the same for T tokens at
// once. With AVX-512 a 4-row x 4-token tile keeps 16 accumulators, converting each weight
// vector once for four tokens; otherwise one token at a time through float_rows_dot.
void float_rows_gemm(DType wt, const void* w, size_t row_bytes, int64_t rows, const float* x,
                     int64_t ldx, int64_t T, int64_t n, float* y, int64_t ldy);

// Registers the GGUF F32/F16/BF16 row dots (cpu/moe/gguf_row_dot.h) on AVX2 CPUs.
void register_gguf_float_rows();

}  // namespace moe
