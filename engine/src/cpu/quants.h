#pragma once
// Row kernels over ggml's block-quantized types, bit-exact with ggml's scalar reference code
// (ggml-quants.c, ggml-cpu/quants.c): dequantization, the reference quantizers that model files
// are made with, and the quantized dot products llama.cpp's CPU backend uses.
//
// A matmul y = x · Wᵀ over a quantized weight W [rows, cols] (each row stored as
// ggml_row_size(W.type, cols) bytes) goes row-wise, as in ggml's mul_mat:
//
//   const GgmlType act = vec_dot_type(W.type);               // e.g. Q4_K -> Q8_K
//   std::vector<uint8_t> xq(ggml_row_size(act, cols));        // once per activation row
//   quantize_activation(act, x, xq.data(), cols);
//   for (r...) y[r] = vec_dot(W.type, W.row(r), xq.data(), cols);
//
// vec_dot's result differs from the exact dot of the dequantized rows only by the activation's
// quantization (and float summation order); tests check that dequantize(W) · dequantize(xq)
// matches it to ~1e-6 relative.
//
// Lengths `n` must be multiples of the type's block size (32 or 256); violations throw
// moe::Error naming the type. Buffers hold whole blocks; Q8_K activation buffers need 4-byte
// alignment (the block starts with an f32), all other formats 2-byte alignment.
#include <cstddef>
#include <cstdint>
#include <string>

#include "formats/ggml_types.h"

namespace moe {

// True for the types that have dequantize/quantize/vec_dot kernels here: F32, F16, BF16,
// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS, MXFP4.
bool has_quant_kernels(GgmlType t);
// Throws moe::Error "<what> is stored as <type>, which has no CPU kernels" unless supported.
void require_quant_kernels(GgmlType t, const std::string& what);

// dst[0..n) = the values of the n elements stored at src.
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

// Writes ggml_row_size(type, n) bytes at dst: ggml's quantize_row_<type>_ref (IQ4_XS:
// quantize_iq4_xs without importance matrix). F32/F16/BF16 are plain conversions
// (round-to-nearest-even).
void quantize_row(GgmlType type, const float* src, void* dst, int64_t n);

// The activation format ggml pairs with a weight type (type_traits_cpu[t].vec_dot_type):
// Q8_0 for Q4_0, Q5_0, Q8_0, IQ4_NL, MXFP4; Q8_1 for Q4_1, Q5_1; Q8_K for Q2_K..Q6_K and
// IQ4_XS; F16 for F16; BF16 for BF16; F32 for F32.
GgmlType vec_dot_type(GgmlType weight_type);

// Quantizes an activation row into `act_type` (= vec_dot_type(weight type)); the same as
// quantize_row, named for the call site.
void quantize_activation(GgmlType act_type, const float* x, void* dst, int64_t n);

// Dot product of one weight row (stored as `weight_type`) with an activation row already in
// vec_dot_type(weight_type), as ggml's scalar vec_dot computes it: per-block integer sums
// combined with float scale products in block order (F32/F16/BF16: products accumulated in
// double).
float vec_dot(GgmlType weight_type, const void* weight_row, const void* activation, int64_t n);

}  // namespace moe
