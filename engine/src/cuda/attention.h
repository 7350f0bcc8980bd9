#pragma once
// Scaled-dot-product attention on the GPU over a KV cache resident on the GPU (CUDA builds
// only): the same contract as attend_cached (model/attention.h) — `heads` query heads, each
// reading KV head h / (heads / kv_heads); causal with an optional sliding window; optional
// per-head sinks (gpt-oss); MLA's values-inside-the-key rows — with fp32 K/V rows. One block
// per (token, head): scores to a scratch row, softmax, weighted value sum. A first, simple
// kernel that is exact to float rounding; the flash-style tiled kernels replace it for speed.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moe::cuda {

struct AttentionShape {
    int64_t heads = 0, kv_heads = 0;
    int64_t dim_qk = 0, dim_v = 0;
    float scale = 1.0f;
    int64_t sliding_window = 0;   // 0 = full causal
    bool values_in_keys = false;  // MLA: value = first dim_v floats of the key row
};

// Floats of scratch attend() needs: one score per (token, head, visible position).
int64_t attention_scratch_floats(const AttentionShape& g, int64_t T, int64_t pos0);

// q [T, heads * dim_qk]; k rows of k_width floats and v rows of v_width floats for positions
// 0 .. pos0 + T - 1 (token t sits at position pos0 + t); sinks [heads] or null;
// out [T, heads * dim_v]. All device pointers.
void attend(const AttentionShape& g, const float* q, int64_t T, int64_t pos0, const float* k,
            int64_t k_width, const float* v, int64_t v_width, const float* sinks, float* out,
            float* scratch, cudaStream_t s);

// The same with token t at the device-side position positions[t], every position below
// `max_ctx`, and scratch of attention_scratch_floats(g, T, max_ctx - T) floats: no argument
// changes from one decode step to the next, so a CUDA graph can replay it.
void attend_at(const AttentionShape& g, const float* q, int64_t T, const int32_t* positions,
               int64_t max_ctx, const float* k, int64_t k_width, const float* v, int64_t v_width,
               const float* sinks, float* out, float* scratch, cudaStream_t s);

// Prompt batches: the same result as attend_at (token t at positions[t], keys 0 .. the
// block's last position) from a tiled kernel — each block holds 8 consecutive queries of one
// head, streams the keys and values through shared memory in tiles of 32 and keeps an online
// softmax per query (flash-attention's order of work, fp32 throughout), so keys are read once
// per 8 queries and no score matrix is written. No scratch. Used for every prompt batch unless
// MOE_TILED_ATTENTION=0 (`tiled_attention_enabled`); tests/cuda checks it against the CPU
// reference.
void attend_tiled_at(const AttentionShape& g, const float* q, int64_t T, const int32_t* positions,
                     const float* k, int64_t k_width, const float* v, int64_t v_width,
                     const float* sinks, float* out, cudaStream_t s);
bool tiled_attention_enabled();

}  // namespace moe::cuda
