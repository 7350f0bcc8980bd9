#pragma once
// The kernels the GPU decoder (hybrid/) needs beyond basic_kernels.h: biases, clamps, the
// gather/scatter of a GPU-resident expert's tokens, the shared-expert gate, MLA's
// weight absorption, and the fp32-activation linear layer. CUDA builds only; all pointers are
// device pointers; every launch is checked. tests/cuda/cuda_kernel_checks.h compares each with
// a plain CPU loop on random inputs.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moe::cuda {

// cache[positions[t]] = rows[t] for T rows of `width` floats (appending a batch's keys or
// values to a KV cache at positions read on the device, as CUDA graphs need).
void write_rows_at(float* cache, const float* rows, int64_t T, int64_t width,
                   const int32_t* positions, cudaStream_t s);

// y[t, i] += b[i] for T rows of n.
void add_bias_rows(float* y, const float* b, int64_t T, int64_t n, cudaStream_t s);

// x = clamp(x, -c, c) (OLMoE's clip_qkv).
void clamp_values(float* x, int64_t n, float c, cudaStream_t s);

// dst[i] = src[idx[i]] (rows of `cols` floats), n rows.
void gather_rows(const float* src, const int32_t* idx, int64_t n, int64_t cols, float* dst,
                 cudaStream_t s);

// dst[idx[i]] += w[i] * src[i] (rows of `cols`); the idx of one call must be distinct.
void scatter_add_rows(float* dst, const float* src, const int32_t* idx, const float* w, int64_t n,
                      int64_t cols, cudaStream_t s);

// out[t] += sigmoid(gate[t]) * x[t] for T rows of `cols` (Qwen2-MoE's shared expert gate).
void add_sigmoid_gated_rows(float* out, const float* x, const float* gate, int64_t T, int64_t cols,
                            cudaStream_t s);

// MLA, absorbed: qcat[t, h] = [q_nope[t, h] · W_UK[h]  (R values),  q_rope[t, h]] where q is
// [T, H, nope + rope] and w_uk is [H, nope, R].
void mla_absorb_query(const float* q, const float* w_uk, int64_t T, int64_t H, int64_t nope,
                      int64_t rope, int64_t R, float* qcat, cudaStream_t s);

// MLA, un-absorbed: o[t, h, d] = sum_r o_lat[t, h, r] · W_UV[h, d, r]; o_lat [T, H, R],
// w_uv [H, vd, R], o [T, H, vd].
void mla_value_up(const float* o_lat, const float* w_uv, int64_t T, int64_t H, int64_t R,
                  int64_t vd, float* o, cudaStream_t s);

// A GQA layer's step after its q/k/v projections, in one launch: per-head RMS norm of q and k
// (Qwen3/OLMoE-style q_norm/k_norm; skipped when the weights are null), the rotary embedding
// of both (as rope() in basic_kernels.h), and each token's key and value rows written into the
// caches (rows of kv_heads * head_dim floats) at positions[t]. q [T, heads, head_dim],
// k and v [T, kv_heads, head_dim]; q and k are updated in place.
struct QkPostShape {
    int64_t heads = 0, kv_heads = 0, head_dim = 0;
    const float* q_norm = nullptr;  // [head_dim] or null
    const float* k_norm = nullptr;
    float q_eps = 1e-6f, k_eps = 1e-6f;
    const float* inv_freq = nullptr;  // [rotary_dim / 2]
    int64_t rotary_dim = 0;
    bool interleaved = false;
    float scaling = 1.0f;
};
bool qk_post_supported(const QkPostShape& g);
void qk_norm_rope_cache(float* q, float* k, const float* v, int64_t T, const QkPostShape& g,
                        const int32_t* positions, float* k_cache, float* v_cache, cudaStream_t s);

// y [T, rows] = x [T, cols] · Wᵀ with W bf16 [rows, cols] and x, y fp32, accumulated in fp32:
// the activations are not rounded (the CPU's bf16-exact precision). One warp per output row,
// four tokens per pass over the row, so decode (T = 1) reads each weight once.
void linear_f32_acts(const uint16_t* w, int64_t rows, int64_t cols, const float* x, int64_t T,
                     float* y, cudaStream_t s);

// Three linear_f32_acts of one input in one launch (a layer's q, k and v projections).
struct Bf16Gemv {
    const uint16_t* w;
    int64_t rows;
    float* y;
};
void linear_f32_acts_3(const Bf16Gemv (&jobs)[3], int64_t cols, const float* x, int64_t T,
                       cudaStream_t s);

// The same with fp32 weights (checkpoints whose weights bf16 cannot hold exactly).
void linear_f32_weights(const float* w, int64_t rows, int64_t cols, const float* x, int64_t T,
                        float* y, cudaStream_t s);

}  // namespace moe::cuda
