// The kernels of expert_kernels.h: one warp per output row of one slot, fp32 accumulation over
// bf16 weights (as linear_f32_acts), slots past *count exit at once.
#include <cuda_bf16.h>

#include "cuda/cuda_check.h"
#include "cuda/expert_kernels.h"

namespace moe::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

__device__ float warp_sum(float v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// Dot product of a bf16 row and an fp32 vector by one warp (8-byte weight loads when aligned).
__device__ float row_dot(const __nv_bfloat16* w, const float* x, int64_t n, int lane) {
    float acc = 0.0f;
    if (n % 4 == 0 && (reinterpret_cast<uintptr_t>(w) & 7) == 0 &&
        (reinterpret_cast<uintptr_t>(x) & 15) == 0) {
        for (int64_t c = int64_t(lane) * 4; c < n; c += 128) {
            const uint2 raw = *reinterpret_cast<const uint2*>(w + c);
            const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.x));
            const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.y));
            const float4 xv = *reinterpret_cast<const float4*>(x + c);
            acc += a.x * xv.x + a.y * xv.y + b.x * xv.z + b.y * xv.w;
        }
    } else {
        for (int64_t c = lane; c < n; c += 32) acc += __bfloat162float(w[c]) * x[c];
    }
    return warp_sum(acc);
}

// grid (ceil(inter / kWarps), max_slots)
__global__ void gate_up_kernel(const GpuExpertWeights* table, const ExpertSlot* slots,
                               const int32_t* count, const float* x, int64_t hidden, int64_t inter,
                               ExpertActivationParams act, float* h) {
    const int64_t s = blockIdx.y;
    if (s >= *count) return;
    const int64_t r = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
    if (r >= inter) return;
    const int lane = threadIdx.x & 31;
    const ExpertSlot slot = slots[s];
    const GpuExpertWeights e = table[slot.expert];
    const float* xt = x + int64_t(slot.token) * hidden;
    const auto* wg = reinterpret_cast<const __nv_bfloat16*>(e.gate) + r * hidden;
    const auto* wu = reinterpret_cast<const __nv_bfloat16*>(e.up) + r * hidden;
    float g = row_dot(wg, xt, hidden, lane), u = row_dot(wu, xt, hidden, lane);
    if (lane != 0) return;
    if (e.gate_bias) g += e.gate_bias[r];
    if (e.up_bias) u += e.up_bias[r];
    float out;
    if (!act.clamped) {
        out = g / (1.0f + expf(-g)) * u;
    } else {
        const float gv = fminf(g, act.limit);
        const float uv = fminf(fmaxf(u, -act.limit), act.limit);
        out = (uv + 1.0f) * (gv / (1.0f + expf(-act.alpha * gv)));
    }
    h[s * inter + r] = out;
}

// grid (ceil(hidden / kWarps), max_slots)
__global__ void down_kernel(const GpuExpertWeights* table, const ExpertSlot* slots,
                            const int32_t* count, const float* h, int64_t hidden, int64_t inter,
                            float* ys) {
    const int64_t s = blockIdx.y;
    if (s >= *count) return;
    const int64_t d = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
    if (d >= hidden) return;
    const int lane = threadIdx.x & 31;
    const GpuExpertWeights e = table[slots[s].expert];
    const auto* wd = reinterpret_cast<const __nv_bfloat16*>(e.down) + d * inter;
    float v = row_dot(wd, h + s * inter, inter, lane);
    if (lane == 0) ys[s * hidden + d] = v + (e.down_bias ? e.down_bias[d] : 0.0f);
}

__global__ void combine_kernel(const ExpertSlot* slots, const int32_t* count, const float* ys,
                               int64_t T, int64_t hidden, float* y) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= T * hidden) return;
    const int64_t t = i / hidden, d = i % hidden;
    const int32_t n = *count;
    float acc = 0.0f;
    for (int32_t s = 0; s < n; ++s)
        if (slots[s].token == t) acc += slots[s].weight * ys[int64_t(s) * hidden + d];
    y[i] += acc;
}

}  // namespace

void experts_gate_up(const GpuExpertWeights* table, const ExpertSlot* slots, const int32_t* count,
                     int64_t max_slots, const float* x, int64_t hidden, int64_t inter,
                     ExpertActivationParams act, float* h, cudaStream_t s) {
    if (max_slots == 0 || inter == 0) return;
    const dim3 grid(unsigned((inter + kWarps - 1) / kWarps), unsigned(max_slots));
    gate_up_kernel<<<grid, kThreads, 0, s>>>(table, slots, count, x, hidden, inter, act, h);
    MOE_CUDA_LAUNCH();
}

void experts_down(const GpuExpertWeights* table, const ExpertSlot* slots, const int32_t* count,
                  int64_t max_slots, const float* h, int64_t hidden, int64_t inter, float* ys,
                  cudaStream_t s) {
    if (max_slots == 0 || hidden == 0) return;
    const dim3 grid(unsigned((hidden + kWarps - 1) / kWarps), unsigned(max_slots));
    down_kernel<<<grid, kThreads, 0, s>>>(table, slots, count, h, hidden, inter, ys);
    MOE_CUDA_LAUNCH();
}

void experts_combine(const ExpertSlot* slots, const int32_t* count, int64_t max_slots,
                     const float* ys, int64_t T, int64_t hidden, float* y, cudaStream_t s) {
    if (max_slots == 0 || T * hidden == 0) return;
    combine_kernel<<<unsigned((T * hidden + kThreads - 1) / kThreads), kThreads, 0, s>>>(
        slots, count, ys, T, hidden, y);
    MOE_CUDA_LAUNCH();
}

}  // namespace moe::cuda
