#pragma once
// Element-wise and row-wise GPU kernels of the decoder blocks (CUDA builds only). Each has a
// CPU reference in model/ or cpu/ that tests/cuda/cuda_kernel_checks.h compares it with on
// random inputs: RmsNorm::apply, RotaryEmbedding::apply, GluActivation::apply, embedding rows.
// All pointers are device pointers; every launch is checked (cuda_check.h).
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moe::cuda {

// y[r] = x[r] * rsqrt(mean(x[r]^2) + eps) * w, rows of `cols` floats (y may equal x).
void rms_norm(const float* x, const float* w, int64_t rows, int64_t cols, float eps, float* y,
              cudaStream_t s);

// x += add, then y = rms_norm(x) (the residual update and the next norm in one launch).
void add_rms_norm(float* x, const float* add, const float* w, int64_t rows, int64_t cols, float eps,
                  float* y, cudaStream_t s);

// The same over the first `cols` floats of rows spaced `stride` floats apart (MLA's latent).
void rms_norm_strided(const float* x, const float* w, int64_t rows, int64_t cols, int64_t stride,
                      float eps, float* y, cudaStream_t s);

// h = silu(g) * u, or gpt-oss's clamped variant (h = (clamp(u, -l, l) + 1) * g' * sigmoid(a g'),
// g' = min(g, l)) when `clamped`.
void glu(const float* g, const float* u, int64_t n, bool clamped, float alpha, float limit,
         float* h, cudaStream_t s);

// Rotates the first rotary_dim values of every head of x [tokens, heads, head_stride] in place,
// token t at positions[t]; pairs (i, i + rotary_dim/2), or (2i, 2i+1) when interleaved; cos and
// sin scaled by attention_scaling (YaRN). inv_freq: rotary_dim / 2 floats.
void rope(float* x, int64_t tokens, int64_t heads, int64_t head_stride, const int32_t* positions,
          const float* inv_freq, int64_t rotary_dim, bool interleaved, float attention_scaling,
          cudaStream_t s);

// out[t] = table[ids[t]] as fp32 (table rows of `cols` bf16 values, or fp32 when !bf16).
void embedding_rows(const void* table, bool bf16, const int32_t* ids, int64_t tokens, int64_t cols,
                    float* out, cudaStream_t s);

// Element-wise fp32 -> bf16 (round to nearest even), e.g. activations for the tensor cores.
void to_bf16(const float* x, int64_t n, uint16_t* out, cudaStream_t s);

// y += x (n floats).
void add_in_place(float* y, const float* x, int64_t n, cudaStream_t s);

}  // namespace moe::cuda
