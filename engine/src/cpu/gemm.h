#pragma once
// Reference matrix kernels over weights kept in their stored type (F32, BF16, F16, FP8 E4M3
// with 128x128 block scales, or a ggml block format from a GGUF file). Accumulation is fp32.
// These are the correctness baseline; the optimised expert kernels are tested against them.
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "formats/ggml_types.h"

namespace moe {

// A row-major weight matrix [rows, cols] as stored. For FP8, `block_scale` holds the
// dequantisation multipliers (DeepSeek-V3 `weight_scale_inv`) of [ceil(rows/B), ceil(cols/B)]
// blocks; `scale_row0` is the first row's index in the full matrix when this is a row slice.
struct WeightMatrix {
    DType dtype = DType::F32;
    // GGUF weights: rows of ggml blocks of `ggml_type`, multiplied the way llama.cpp does
    // (activations quantized to the type's vec_dot_type, block-wise integer dot products).
    bool ggml = false;
    GgmlType ggml_type = GgmlType::F32;
    int64_t rows = 0, cols = 0;
    const void* data = nullptr;
    const float* block_scale = nullptr;
    int64_t block = 128;
    int64_t scale_cols = 0;  // columns of the block-scale grid
    int64_t scale_row0 = 0;

    size_t row_bytes() const;
    // Rows [begin, begin + count) as a matrix of their own.
    WeightMatrix row_slice(int64_t begin, int64_t count) const;
    // Converts columns [c0, c1) of row `r` to fp32 (out[0] is column c0).
    void row_to_f32(int64_t r, float* out, int64_t c0, int64_t c1) const;
    void row_to_f32(int64_t r, float* out) const { row_to_f32(r, out, 0, cols); }
};

// y[t, r] = sum_k x[t, k] * W[r, k] for t < T (y = x W^T), parallel over rows of W.
void gemm_xwt(const float* x, int64_t T, const WeightMatrix& w, float* y);

// y[t, c] = sum_r x[t, r] * W[r, c] for t < T (y = x W), x has W.rows columns.
void gemm_xw(const float* x, int64_t T, const WeightMatrix& w, float* y);

float dot_f32(const float* a, const float* b, int64_t n);

}  // namespace moe
