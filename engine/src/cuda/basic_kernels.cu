// The kernels of basic_kernels.h. Arithmetic follows the CPU references (fp32, the same order
// of the per-element operations), so results agree to float rounding.
#include <cuda_bf16.h>

#include "cuda/basic_kernels.h"
#include "cuda/cuda_check.h"

namespace moe::cuda {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) {
    return int((n + kThreads - 1) / kThreads);
}

// `add` (optional): x += add first (the residual update before the norm, fused). Each thread
// reads back only the elements it wrote.
__global__ void rms_norm_kernel(float* x, const float* add, const float* w, int64_t cols,
                                int64_t stride, float eps, float* y) {
    float* xr = x + blockIdx.x * stride;
    float* yr = y + blockIdx.x * stride;
    float ss = 0.0f;
    if (add) {
        const float* ar = add + blockIdx.x * stride;
        for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
            const float v = xr[i] + ar[i];
            xr[i] = v;
            ss += v * v;
        }
    } else {
        for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) ss += xr[i] * xr[i];
    }
    __shared__ float warp_sums[32];
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = ss;
    __syncthreads();
    if (threadIdx.x < 32) {
        ss = threadIdx.x < (blockDim.x >> 5) ? warp_sums[threadIdx.x] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
        if (threadIdx.x == 0) warp_sums[0] = ss;
    }
    __syncthreads();
    const float scale = rsqrtf(warp_sums[0] / float(cols) + eps);
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) yr[i] = xr[i] * scale * w[i];
}

__global__ void glu_kernel(const float* g, const float* u, int64_t n, bool clamped, float alpha,
                           float limit, float* h) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    if (!clamped) {
        h[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
        return;
    }
    const float gv = fminf(g[i], limit);
    const float uv = fminf(fmaxf(u[i], -limit), limit);
    h[i] = (uv + 1.0f) * (gv / (1.0f + expf(-alpha * gv)));
}

__global__ void rope_kernel(float* x, int64_t tokens, int64_t heads, int64_t head_stride,
                            const int32_t* positions, const float* inv_freq, int64_t half,
                            bool interleaved, float scaling) {
    const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= tokens * heads * half) return;
    const int64_t i = idx % half, h = (idx / half) % heads, t = idx / (half * heads);
    const float angle = float(positions[t]) * inv_freq[i];
    const float c = cosf(angle) * scaling, s = sinf(angle) * scaling;
    float* v = x + (t * heads + h) * head_stride;
    const int64_t a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x1 * c + x0 * s;
}

__global__ void embedding_kernel(const void* table, bool bf16, const int32_t* ids, int64_t tokens,
                                 int64_t cols, float* out) {
    const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= tokens * cols) return;
    const int64_t t = idx / cols, c = idx % cols;
    const int64_t src = int64_t(ids[t]) * cols + c;
    out[idx] = bf16 ? __bfloat162float(static_cast<const __nv_bfloat16*>(table)[src])
                    : static_cast<const float*>(table)[src];
}

__global__ void to_bf16_kernel(const float* x, int64_t n, __nv_bfloat16* out) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) out[i] = __float2bfloat16_rn(x[i]);
}

__global__ void add_kernel(float* y, const float* x, int64_t n) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) y[i] += x[i];
}

}  // namespace

void rms_norm(const float* x, const float* w, int64_t rows, int64_t cols, float eps, float* y,
              cudaStream_t s) {
    rms_norm_strided(x, w, rows, cols, cols, eps, y, s);
}

void rms_norm_strided(const float* x, const float* w, int64_t rows, int64_t cols, int64_t stride,
                      float eps, float* y, cudaStream_t s) {
    if (rows == 0) return;
    rms_norm_kernel<<<unsigned(rows), kThreads, 0, s>>>(const_cast<float*>(x), nullptr, w, cols,
                                                        stride, eps, y);
    MOE_CUDA_LAUNCH();
}

void add_rms_norm(float* x, const float* add, const float* w, int64_t rows, int64_t cols, float eps,
                  float* y, cudaStream_t s) {
    if (rows == 0) return;
    rms_norm_kernel<<<unsigned(rows), kThreads, 0, s>>>(x, add, w, cols, cols, eps, y);
    MOE_CUDA_LAUNCH();
}

void glu(const float* g, const float* u, int64_t n, bool clamped, float alpha, float limit,
         float* h, cudaStream_t s) {
    if (n == 0) return;
    glu_kernel<<<blocks_for(n), kThreads, 0, s>>>(g, u, n, clamped, alpha, limit, h);
    MOE_CUDA_LAUNCH();
}

void rope(float* x, int64_t tokens, int64_t heads, int64_t head_stride, const int32_t* positions,
          const float* inv_freq, int64_t rotary_dim, bool interleaved, float attention_scaling,
          cudaStream_t s) {
    const int64_t half = rotary_dim / 2, n = tokens * heads * half;
    if (n == 0) return;
    rope_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, tokens, heads, head_stride, positions,
                                                   inv_freq, half, interleaved, attention_scaling);
    MOE_CUDA_LAUNCH();
}

void embedding_rows(const void* table, bool bf16, const int32_t* ids, int64_t tokens, int64_t cols,
                    float* out, cudaStream_t s) {
    const int64_t n = tokens * cols;
    if (n == 0) return;
    embedding_kernel<<<blocks_for(n), kThreads, 0, s>>>(table, bf16, ids, tokens, cols, out);
    MOE_CUDA_LAUNCH();
}

void to_bf16(const float* x, int64_t n, uint16_t* out, cudaStream_t s) {
    if (n == 0) return;
    to_bf16_kernel<<<unsigned((n + 255) / 256), 256, 0, s>>>(x, n,
                                                             reinterpret_cast<__nv_bfloat16*>(out));
    MOE_CUDA_LAUNCH();
}

void add_in_place(float* y, const float* x, int64_t n, cudaStream_t s) {
    if (n == 0) return;
    add_kernel<<<blocks_for(n), kThreads, 0, s>>>(y, x, n);
    MOE_CUDA_LAUNCH();
}

}  // namespace moe::cuda
