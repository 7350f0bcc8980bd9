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

constexpr int kMaxHeadDim = 1024;

// One block per (token, query or key head): the head's values in shared memory, normalised
// (when weights are given), rotated, written back; key blocks also write the key and the value
// row of their head into the cache at the token's position.
__global__ void qk_post_kernel(float* q, float* k, const float* v, int64_t T, QkPostShape g,
                               const int32_t* positions, float* k_cache, float* v_cache) {
    __shared__ float xs[kMaxHeadDim];
    __shared__ float red[32];
    const int64_t heads = g.heads + g.kv_heads;
    const int64_t t = blockIdx.x / heads, hs = blockIdx.x % heads;
    const bool is_q = hs < g.heads;
    const int64_t head = is_q ? hs : hs - g.heads, D = g.head_dim;
    float* x = is_q ? q + (t * g.heads + head) * D : k + (t * g.kv_heads + head) * D;
    const float* nw = is_q ? g.q_norm : g.k_norm;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) xs[i] = x[i];
    if (nw) {  // as rms_norm_kernel
        float ss = 0.0f;
        for (int64_t i = threadIdx.x; i < D; i += blockDim.x) ss += xs[i] * xs[i];
        for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
        if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = ss;
        __syncthreads();
        if (threadIdx.x < 32) {
            ss = threadIdx.x < (blockDim.x >> 5) ? red[threadIdx.x] : 0.0f;
            for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
            if (threadIdx.x == 0) red[0] = ss;
        }
        __syncthreads();
        const float scale = rsqrtf(red[0] / float(D) + (is_q ? g.q_eps : g.k_eps));
        for (int64_t i = threadIdx.x; i < D; i += blockDim.x) xs[i] = xs[i] * scale * nw[i];
    }
    __syncthreads();
    const int64_t pos = positions[t], half = g.rotary_dim / 2;
    for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {  // as rope_kernel
        const float angle = float(pos) * g.inv_freq[i];
        const float c = cosf(angle) * g.scaling, sn = sinf(angle) * g.scaling;
        const int64_t a = g.interleaved ? 2 * i : i, b = g.interleaved ? 2 * i + 1 : i + half;
        const float x0 = xs[a], x1 = xs[b];
        xs[a] = x0 * c - x1 * sn;
        xs[b] = x1 * c + x0 * sn;
    }
    __syncthreads();
    const int64_t width = g.kv_heads * D, at = pos * width + head * D;
    const float* vr = v + (t * g.kv_heads + head) * D;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
        x[i] = xs[i];
        if (!is_q) {
            k_cache[at + i] = xs[i];
            v_cache[at + i] = vr[i];
        }
    }
}

constexpr int kTokensPerPass = 4;

__device__ void to_floats(const uint4& raw, const __nv_bfloat16*, float* out) {
    const __nv_bfloat162* p = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const float2 f = __bfloat1622float2(p[i]);
        out[2 * i] = f.x;
        out[2 * i + 1] = f.y;
    }
}
__device__ void to_floats(const uint4& raw, const float*, float* out) {
    const float* p = reinterpret_cast<const float*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) out[i] = p[i];
}
__device__ float load1(const __nv_bfloat16* w) {
    return __bfloat162float(*w);
}
__device__ float load1(const float* w) {
    return *w;
}

// Up to three matrices with the same input in one launch (a layer's q, k and v projections).
template <class W>
struct GemvJobs {
    const W* w[3];
    float* y[3];
    int64_t rows[3];
    int n;
};

// One warp per output row of the concatenated jobs. Lanes stride the row 16 bytes of weights at
// a time (8 bf16 or 4 fp32; several loads in flight per lane) when the row allows it, else one
// value at a time; up to four tokens share each weight load.
template <class W>
__global__ void gemv_kernel(GemvJobs<W> jobs, int64_t cols, const float* x, int64_t T) {
    constexpr int kVec = 16 / sizeof(W);
    int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31;
    int j = 0;
    while (j < jobs.n && row >= jobs.rows[j]) row -= jobs.rows[j++];
    if (j >= jobs.n) return;
    const W* wr = jobs.w[j] + row * cols;
    float* y = jobs.y[j];
    const int64_t rows = jobs.rows[j];
    const bool vec = (cols % kVec == 0) && ((reinterpret_cast<uintptr_t>(wr) & 15) == 0) &&
                     ((reinterpret_cast<uintptr_t>(x) & 15) == 0);
    for (int64_t t0 = 0; t0 < T; t0 += kTokensPerPass) {
        const int nt = T - t0 < kTokensPerPass ? int(T - t0) : kTokensPerPass;
        float acc[kTokensPerPass] = {0.0f, 0.0f, 0.0f, 0.0f};
        if (vec) {
#pragma unroll 4
            for (int64_t c = int64_t(lane) * kVec; c < cols; c += 32 * kVec) {
                const uint4 raw = __ldg(reinterpret_cast<const uint4*>(wr + c));
                float wv[kVec];
                to_floats(raw, wr, wv);
#pragma unroll
                for (int t = 0; t < kTokensPerPass; ++t) {
                    if (t >= nt) break;
                    const float* xt = x + (t0 + t) * cols + c;
#pragma unroll
                    for (int i = 0; i < kVec; i += 4) {
                        const float4 xv = __ldg(reinterpret_cast<const float4*>(xt + i));
                        acc[t] +=
                            wv[i] * xv.x + wv[i + 1] * xv.y + wv[i + 2] * xv.z + wv[i + 3] * xv.w;
                    }
                }
            }
        } else {
            for (int64_t c = lane; c < cols; c += 32) {
                const float wv = load1(wr + c);
#pragma unroll
                for (int t = 0; t < kTokensPerPass; ++t) {
                    if (t >= nt) break;
                    acc[t] += wv * x[(t0 + t) * cols + c];
                }
            }
        }
#pragma unroll
        for (int t = 0; t < kTokensPerPass; ++t) {
            float v = acc[t];
            for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
            if (lane == 0 && t < nt) y[(t0 + t) * rows + row] = v;
        }
    }
}

template <class W>
void launch_gemv(const GemvJobs<W>& jobs, int64_t cols, const float* x, int64_t T, cudaStream_t s) {
    int64_t rows = 0;
    for (int j = 0; j < jobs.n; ++j) rows += jobs.rows[j];
    if (rows == 0 || T == 0) return;
    gemv_kernel<W><<<blocks_for(rows * 32), kThreads, 0, s>>>(jobs, cols, x, T);
    MOE_CUDA_LAUNCH();
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

bool qk_post_supported(const QkPostShape& g) {
    return g.head_dim <= kMaxHeadDim && g.rotary_dim <= g.head_dim;
}

void qk_norm_rope_cache(float* q, float* k, const float* v, int64_t T, const QkPostShape& g,
                        const int32_t* positions, float* k_cache, float* v_cache, cudaStream_t s) {
    require(qk_post_supported(g), "cuda::qk_norm_rope_cache: unsupported head shape");
    if (T == 0) return;
    qk_post_kernel<<<unsigned(T * (g.heads + g.kv_heads)), 128, 0, s>>>(q, k, v, T, g, positions,
                                                                        k_cache, v_cache);
    MOE_CUDA_LAUNCH();
}

void linear_f32_acts(const uint16_t* w, int64_t rows, int64_t cols, const float* x, int64_t T,
                     float* y, cudaStream_t s) {
    GemvJobs<__nv_bfloat16> jobs{{reinterpret_cast<const __nv_bfloat16*>(w)}, {y}, {rows}, 1};
    launch_gemv(jobs, cols, x, T, s);
}

void linear_f32_weights(const float* w, int64_t rows, int64_t cols, const float* x, int64_t T,
                        float* y, cudaStream_t s) {
    GemvJobs<float> jobs{{w}, {y}, {rows}, 1};
    launch_gemv(jobs, cols, x, T, s);
}

void linear_f32_acts_3(const Bf16Gemv (&jobs)[3], int64_t cols, const float* x, int64_t T,
                       cudaStream_t s) {
    GemvJobs<__nv_bfloat16> j{};
    j.n = 3;
    for (int i = 0; i < 3; ++i) {
        j.w[i] = reinterpret_cast<const __nv_bfloat16*>(jobs[i].w);
        j.y[i] = jobs[i].y;
        j.rows[i] = jobs[i].rows;
    }
    launch_gemv(j, cols, x, T, s);
}

}  // namespace moe::cuda
