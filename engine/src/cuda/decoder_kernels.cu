// The kernels of decoder_kernels.h.
#include <cuda_bf16.h>

#include "cuda/cuda_check.h"
#include "cuda/decoder_kernels.h"

namespace moe::cuda {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) {
    return unsigned((n + kThreads - 1) / kThreads);
}

__global__ void write_rows_at_kernel(float* cache, const float* rows, int64_t T, int64_t width,
                                     const int32_t* positions) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= T * width) return;
    const int64_t t = i / width, c = i % width;
    cache[int64_t(positions[t]) * width + c] = rows[i];
}

__global__ void add_bias_kernel(float* y, const float* b, int64_t T, int64_t n) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < T * n) y[i] += b[i % n];
}

__global__ void clamp_kernel(float* x, int64_t n, float c) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) x[i] = fminf(fmaxf(x[i], -c), c);
}

__global__ void gather_kernel(const float* src, const int32_t* idx, int64_t n, int64_t cols,
                              float* dst) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n * cols) return;
    const int64_t r = i / cols, c = i % cols;
    dst[i] = src[int64_t(idx[r]) * cols + c];
}

__global__ void scatter_add_kernel(float* dst, const float* src, const int32_t* idx, const float* w,
                                   int64_t n, int64_t cols) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n * cols) return;
    const int64_t r = i / cols, c = i % cols;
    dst[int64_t(idx[r]) * cols + c] += w[r] * src[i];
}

__global__ void sigmoid_gated_kernel(float* out, const float* x, const float* gate, int64_t T,
                                     int64_t cols) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= T * cols) return;
    const float g = 1.0f / (1.0f + expf(-gate[i / cols]));
    out[i] += g * x[i];
}

// One thread per (t, h, r): the R outputs of a head read W_UK[h] row by row, coalesced in r.
__global__ void mla_absorb_kernel(const float* q, const float* w_uk, int64_t T, int64_t H,
                                  int64_t nope, int64_t rope, int64_t R, float* qcat) {
    const int64_t width = R + rope;
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= T * H * width) return;
    const int64_t c = i % width, th = i / width, h = th % H;
    const float* qh = q + th * (nope + rope);
    if (c >= R) {
        qcat[i] = qh[nope + (c - R)];
        return;
    }
    const float* w = w_uk + h * nope * R + c;
    float acc = 0.0f;
    for (int64_t n = 0; n < nope; ++n) acc += qh[n] * w[n * R];
    qcat[i] = acc;
}

// One warp per (t, h, d): a dot product of R values, coalesced along r.
__global__ void mla_value_up_kernel(const float* o_lat, const float* w_uv, int64_t T, int64_t H,
                                    int64_t R, int64_t vd, float* o) {
    const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31;
    if (warp >= T * H * vd) return;
    const int64_t d = warp % vd, th = warp / vd, h = th % H;
    const float* a = o_lat + th * R;
    const float* w = w_uv + (h * vd + d) * R;
    float acc = 0.0f;
    for (int64_t r = lane; r < R; r += 32) acc += a[r] * w[r];
    for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
    if (lane == 0) o[warp] = acc;
}

constexpr int kTokensPerPass = 4;

__device__ float2 load2(const __nv_bfloat16* w) {
    return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(w));
}
__device__ float2 load2(const float* w) {
    return *reinterpret_cast<const float2*>(w);
}
__device__ float load1(const __nv_bfloat16* w) {
    return __bfloat162float(*w);
}
__device__ float load1(const float* w) {
    return *w;
}

// One warp per output row. Lanes stride the row four values at a time (8- or 16-byte weight
// loads) when the row allows it, else one value at a time; up to four tokens share each
// weight load.
template <class W>
__global__ void linear_f32_acts_kernel(const W* w, int64_t rows, int64_t cols, const float* x,
                                       int64_t T, float* y) {
    const int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const W* wr = w + row * cols;
    const bool vec = (cols % 4 == 0) &&
                     ((reinterpret_cast<uintptr_t>(wr) & (4 * sizeof(W) - 1)) == 0) &&
                     ((reinterpret_cast<uintptr_t>(x) & 15) == 0);
    for (int64_t t0 = 0; t0 < T; t0 += kTokensPerPass) {
        const int nt = T - t0 < kTokensPerPass ? int(T - t0) : kTokensPerPass;
        float acc[kTokensPerPass] = {0.0f, 0.0f, 0.0f, 0.0f};
        if (vec) {
            for (int64_t c = int64_t(lane) * 4; c < cols; c += 128) {
                const float2 w01 = load2(wr + c), w23 = load2(wr + c + 2);
#pragma unroll
                for (int j = 0; j < kTokensPerPass; ++j) {
                    if (j >= nt) break;
                    const float4 xv = *reinterpret_cast<const float4*>(x + (t0 + j) * cols + c);
                    acc[j] += w01.x * xv.x + w01.y * xv.y + w23.x * xv.z + w23.y * xv.w;
                }
            }
        } else {
            for (int64_t c = lane; c < cols; c += 32) {
                const float wv = load1(wr + c);
#pragma unroll
                for (int j = 0; j < kTokensPerPass; ++j) {
                    if (j >= nt) break;
                    acc[j] += wv * x[(t0 + j) * cols + c];
                }
            }
        }
#pragma unroll
        for (int j = 0; j < kTokensPerPass; ++j) {
            float v = acc[j];
            for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
            if (lane == 0 && j < nt) y[(t0 + j) * rows + row] = v;
        }
    }
}

}  // namespace

void write_rows_at(float* cache, const float* rows, int64_t T, int64_t width,
                   const int32_t* positions, cudaStream_t s) {
    if (T * width == 0) return;
    write_rows_at_kernel<<<blocks_for(T * width), kThreads, 0, s>>>(cache, rows, T, width,
                                                                    positions);
    MOE_CUDA_LAUNCH();
}

void add_bias_rows(float* y, const float* b, int64_t T, int64_t n, cudaStream_t s) {
    if (T * n == 0) return;
    add_bias_kernel<<<blocks_for(T * n), kThreads, 0, s>>>(y, b, T, n);
    MOE_CUDA_LAUNCH();
}

void clamp_values(float* x, int64_t n, float c, cudaStream_t s) {
    if (n == 0) return;
    clamp_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, n, c);
    MOE_CUDA_LAUNCH();
}

void gather_rows(const float* src, const int32_t* idx, int64_t n, int64_t cols, float* dst,
                 cudaStream_t s) {
    if (n * cols == 0) return;
    gather_kernel<<<blocks_for(n * cols), kThreads, 0, s>>>(src, idx, n, cols, dst);
    MOE_CUDA_LAUNCH();
}

void scatter_add_rows(float* dst, const float* src, const int32_t* idx, const float* w, int64_t n,
                      int64_t cols, cudaStream_t s) {
    if (n * cols == 0) return;
    scatter_add_kernel<<<blocks_for(n * cols), kThreads, 0, s>>>(dst, src, idx, w, n, cols);
    MOE_CUDA_LAUNCH();
}

void add_sigmoid_gated_rows(float* out, const float* x, const float* gate, int64_t T, int64_t cols,
                            cudaStream_t s) {
    if (T * cols == 0) return;
    sigmoid_gated_kernel<<<blocks_for(T * cols), kThreads, 0, s>>>(out, x, gate, T, cols);
    MOE_CUDA_LAUNCH();
}

void mla_absorb_query(const float* q, const float* w_uk, int64_t T, int64_t H, int64_t nope,
                      int64_t rope, int64_t R, float* qcat, cudaStream_t s) {
    const int64_t n = T * H * (R + rope);
    if (n == 0) return;
    mla_absorb_kernel<<<blocks_for(n), kThreads, 0, s>>>(q, w_uk, T, H, nope, rope, R, qcat);
    MOE_CUDA_LAUNCH();
}

void mla_value_up(const float* o_lat, const float* w_uv, int64_t T, int64_t H, int64_t R,
                  int64_t vd, float* o, cudaStream_t s) {
    const int64_t warps = T * H * vd;
    if (warps == 0) return;
    mla_value_up_kernel<<<blocks_for(warps * 32), kThreads, 0, s>>>(o_lat, w_uv, T, H, R, vd, o);
    MOE_CUDA_LAUNCH();
}

void linear_f32_acts(const uint16_t* w, int64_t rows, int64_t cols, const float* x, int64_t T,
                     float* y, cudaStream_t s) {
    if (rows == 0 || T == 0) return;
    linear_f32_acts_kernel<<<blocks_for(rows * 32), kThreads, 0, s>>>(
        reinterpret_cast<const __nv_bfloat16*>(w), rows, cols, x, T, y);
    MOE_CUDA_LAUNCH();
}

void linear_f32_weights(const float* w, int64_t rows, int64_t cols, const float* x, int64_t T,
                        float* y, cudaStream_t s) {
    if (rows == 0 || T == 0) return;
    linear_f32_acts_kernel<<<blocks_for(rows * 32), kThreads, 0, s>>>(w, rows, cols, x, T, y);
    MOE_CUDA_LAUNCH();
}

}  // namespace moe::cuda
