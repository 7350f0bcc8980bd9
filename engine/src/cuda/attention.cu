// attention.h: one block per (token, query head).
#include <cfloat>

#include "cuda/attention.h"
#include "cuda/cuda_check.h"

namespace moe::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxDim = 1024;  // q held in shared memory

// Block-wide reduction (max or sum) of one value per thread; every thread gets the result.
template <bool Max>
__device__ float block_reduce(float v, float* shared) {
    for (int o = 16; o > 0; o >>= 1) {
        const float other = __shfl_xor_sync(0xffffffffu, v, o);
        v = Max ? fmaxf(v, other) : v + other;
    }
    if ((threadIdx.x & 31) == 0) shared[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        v = threadIdx.x < (blockDim.x >> 5) ? shared[threadIdx.x] : (Max ? -FLT_MAX : 0.0f);
        for (int o = 16; o > 0; o >>= 1) {
            const float other = __shfl_xor_sync(0xffffffffu, v, o);
            v = Max ? fmaxf(v, other) : v + other;
        }
        if (threadIdx.x == 0) shared[0] = v;
    }
    __syncthreads();
    const float r = shared[0];
    __syncthreads();
    return r;
}

__global__ void attend_kernel(AttentionShape g, const float* q, int64_t pos0,
                              const int32_t* positions, int64_t ctx, const float* k,
                              int64_t k_width, const float* v, int64_t v_width, const float* sinks,
                              float* out, float* scratch) {
    __shared__ float qs[kMaxDim];
    __shared__ float red[32];
    const int64_t t = blockIdx.x / g.heads, h = blockIdx.x % g.heads;
    const int64_t kvh = h / (g.heads / g.kv_heads);
    const int64_t pos = positions ? int64_t(positions[t]) : pos0 + t;
    const int64_t first = g.sliding_window > 0 ? max(int64_t(0), pos - g.sliding_window + 1) : 0;
    const int64_t n = pos - first + 1;
    float* s = scratch + blockIdx.x * ctx;
    const float* qh = q + (t * g.heads + h) * g.dim_qk;
    for (int64_t d = threadIdx.x; d < g.dim_qk; d += blockDim.x) qs[d] = qh[d];
    __syncthreads();

    // Scores: one warp per key, its lanes across the head dimension (coalesced reads).
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int64_t j = warp; j < n; j += warps) {
        const float* kj = k + (first + j) * k_width + kvh * g.dim_qk;
        float dot = 0.0f;
        for (int64_t d = lane; d < g.dim_qk; d += 32) dot += qs[d] * kj[d];
        for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
        if (lane == 0) s[j] = dot * g.scale;
    }
    __syncthreads();
    float mx = -FLT_MAX;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) mx = fmaxf(mx, s[j]);
    mx = block_reduce<true>(mx, red);
    const float sink = sinks ? sinks[h] : 0.0f;
    if (sinks) mx = fmaxf(mx, sink);
    float sum = 0.0f;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
        s[j] = expf(s[j] - mx);
        sum += s[j];
    }
    sum = block_reduce<false>(sum, red);  // also orders the s[] writes before the reads below
    const float denom = sum + (sinks ? expf(sink - mx) : 0.0f);
    float* o = out + (t * g.heads + h) * g.dim_v;
    const auto value_row = [&](int64_t j) {
        return g.values_in_keys ? k + (first + j) * k_width
                                : v + (first + j) * v_width + kvh * g.dim_v;
    };
    const int groups = int(blockDim.x / g.dim_v);
    if (groups <= 1) {
        for (int64_t d = threadIdx.x; d < g.dim_v; d += blockDim.x) {
            float acc = 0.0f;
            for (int64_t j = 0; j < n; ++j) acc += (s[j] / denom) * value_row(j)[d];
            o[d] = acc;
        }
        return;
    }
    // Several thread groups split the positions (a head is narrower than the block), then
    // their partial sums are added.
    __shared__ float part[kThreads];
    const int grp = int(threadIdx.x / g.dim_v);
    const int64_t d = threadIdx.x % g.dim_v;
    float acc = 0.0f;
    if (grp < groups)
        for (int64_t j = grp; j < n; j += groups) acc += (s[j] / denom) * value_row(j)[d];
    part[threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.x < g.dim_v) {
        float total = 0.0f;
        for (int i = 0; i < groups; ++i) total += part[i * g.dim_v + threadIdx.x];
        o[threadIdx.x] = total;
    }
}

void check_shape(const AttentionShape& g) {
    require(g.heads > 0 && g.kv_heads > 0 && g.heads % g.kv_heads == 0,
            "cuda::attend: heads must be a multiple of kv_heads");
    require(g.dim_qk <= kMaxDim, "cuda::attend: query head dimension " + std::to_string(g.dim_qk) +
                                     " above " + std::to_string(kMaxDim));
}

}  // namespace

int64_t attention_scratch_floats(const AttentionShape& g, int64_t T, int64_t pos0) {
    return T * g.heads * (pos0 + T);
}

void attend(const AttentionShape& g, const float* q, int64_t T, int64_t pos0, const float* k,
            int64_t k_width, const float* v, int64_t v_width, const float* sinks, float* out,
            float* scratch, cudaStream_t s) {
    if (T == 0) return;
    check_shape(g);
    attend_kernel<<<unsigned(T * g.heads), kThreads, 0, s>>>(
        g, q, pos0, nullptr, pos0 + T, k, k_width, v, v_width, sinks, out, scratch);
    MOE_CUDA_LAUNCH();
}

void attend_at(const AttentionShape& g, const float* q, int64_t T, const int32_t* positions,
               int64_t max_ctx, const float* k, int64_t k_width, const float* v, int64_t v_width,
               const float* sinks, float* out, float* scratch, cudaStream_t s) {
    if (T == 0) return;
    check_shape(g);
    attend_kernel<<<unsigned(T * g.heads), kThreads, 0, s>>>(
        g, q, 0, positions, max_ctx, k, k_width, v, v_width, sinks, out, scratch);
    MOE_CUDA_LAUNCH();
}

}  // namespace moe::cuda
