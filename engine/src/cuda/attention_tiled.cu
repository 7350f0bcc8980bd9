// attention.h's attend_tiled_at: one warp per query, 8 consecutive queries of one head per
// block; keys (and values) pass through shared memory in tiles of 32, one key per lane for the
// scores; an online softmax per query (running maximum and sum, the accumulator rescaled when
// the maximum grows), so nothing of size T x T is ever written.
#include <cfloat>
#include <cstdint>
#include <cstdlib>

#include "cuda/attention.h"
#include "cuda/cuda_check.h"

namespace moe::cuda {
namespace {

constexpr int kQueries = 8;  // warps per block, one query each
constexpr int kTile = 32;    // keys per tile: one per lane while scoring
constexpr int kMaxAcc = 16;  // outputs per lane: dim_v up to 512 (MLA's absorbed latent)
constexpr unsigned kFull = 0xffffffffu;

size_t shared_bytes(const AttentionShape& g) {
    size_t floats = size_t(kQueries) * size_t(g.dim_qk) + size_t(kTile) * size_t(g.dim_qk + 1);
    if (!g.values_in_keys) floats += size_t(kTile) * size_t(g.dim_v);
    return floats * sizeof(float);
}

__device__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFull, v, o));
    return v;
}

__device__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
    return v;
}

// grid (ceil(T / kQueries), heads), kQueries * 32 threads, shared_bytes(g) of shared memory.
__global__ void attend_tiled_kernel(AttentionShape g, const float* q, int64_t T,
                                    const int32_t* positions, const float* k, int64_t k_width,
                                    const float* v, int64_t v_width, const float* sinks,
                                    float* out) {
    extern __shared__ float smem[];
    const int64_t D = g.dim_qk, DV = g.dim_v, KS = D + 1;  // KS: odd stride, no bank conflicts
    float* qs = smem;                                      // [kQueries][D]
    float* ks = qs + kQueries * D;                         // [kTile][D + 1]
    float* vs = ks + kTile * KS;  // [kTile][DV], unless the values are in the keys
    __shared__ int64_t range[2];
    const int64_t h = blockIdx.y, kvh = h / (g.heads / g.kv_heads);
    const int64_t t0 = int64_t(blockIdx.x) * kQueries;
    const int warp = int(threadIdx.x >> 5), lane = int(threadIdx.x & 31);
    const int64_t t = t0 + warp;
    const bool active = t < T;
    for (int64_t i = threadIdx.x; i < kQueries * D; i += blockDim.x) {
        const int64_t qt = t0 + i / D;
        qs[i] = qt < T ? q[(qt * g.heads + h) * D + i % D] : 0.0f;
    }
    if (threadIdx.x == 0) {  // the keys any query of the block sees
        int64_t lo = INT64_MAX, hi = -1;
        for (int i = 0; i < kQueries && t0 + i < T; ++i) {
            const int64_t p = positions[t0 + i];
            lo = min(lo,
                     g.sliding_window > 0 ? max(int64_t(0), p - g.sliding_window + 1) : int64_t(0));
            hi = max(hi, p);
        }
        range[0] = lo;
        range[1] = hi;
    }
    __syncthreads();
    const int64_t lo = range[0], hi = range[1];
    const int64_t pos = active ? int64_t(positions[t]) : -1;
    const int64_t first =
        g.sliding_window > 0 ? max(int64_t(0), pos - g.sliding_window + 1) : int64_t(0);
    float acc[kMaxAcc];
#pragma unroll
    for (int i = 0; i < kMaxAcc; ++i) acc[i] = 0.0f;
    float m = -FLT_MAX, l = 0.0f;
    const float* qrow = qs + warp * D;
    for (int64_t k0 = lo; k0 <= hi; k0 += kTile) {
        __syncthreads();  // every warp is done with the previous tile
        for (int64_t i = threadIdx.x; i < kTile * D; i += blockDim.x) {
            const int64_t j = i / D, d = i % D, p = k0 + j;
            ks[j * KS + d] = p <= hi ? k[p * k_width + kvh * D + d] : 0.0f;
        }
        if (!g.values_in_keys) {
            for (int64_t i = threadIdx.x; i < kTile * DV; i += blockDim.x) {
                const int64_t j = i / DV, d = i % DV, p = k0 + j;
                vs[j * DV + d] = p <= hi ? v[p * v_width + kvh * DV + d] : 0.0f;
            }
        }
        __syncthreads();
        if (!active) continue;
        const int64_t p = k0 + lane;
        const bool visible = p >= first && p <= pos;
        float score = -FLT_MAX;
        if (visible) {
            const float* kr = ks + lane * KS;
            float dot = 0.0f;
            for (int64_t d = 0; d < D; ++d) dot += qrow[d] * kr[d];
            score = dot * g.scale;
        }
        const float tile_max = warp_max(score);
        if (tile_max == -FLT_MAX) continue;  // nothing visible in this tile (same for the warp)
        const float m_new = fmaxf(m, tile_max);
        const float corr = expf(m - m_new);
        const float w = visible ? expf(score - m_new) : 0.0f;
        l = l * corr + warp_sum(w);
#pragma unroll
        for (int i = 0; i < kMaxAcc; ++i) acc[i] *= corr;
        for (int j = 0; j < kTile; ++j) {
            const float wj = __shfl_sync(kFull, w, j);
            if (wj == 0.0f) continue;  // the same for every lane
            const float* vr = g.values_in_keys ? ks + j * KS : vs + j * DV;
#pragma unroll
            for (int i = 0; i < kMaxAcc; ++i) {
                const int64_t d = lane + 32 * i;
                if (d < DV) acc[i] += wj * vr[d];
            }
        }
        m = m_new;
    }
    if (!active) return;
    // Sinks (gpt-oss): one more logit per head in the denominator only, as attend's kernel.
    float scale = 1.0f, denom = l;
    if (sinks) {
        const float top = fmaxf(m, sinks[h]);
        scale = expf(m - top);
        denom = l * scale + expf(sinks[h] - top);
    }
    float* o = out + (t * g.heads + h) * DV;
#pragma unroll
    for (int i = 0; i < kMaxAcc; ++i) {
        const int64_t d = lane + 32 * i;
        if (d < DV) o[d] = acc[i] * scale / denom;
    }
}

}  // namespace

bool tiled_attention_enabled() {
    static const bool on = [] {
        // On by default since it matched the reference on the H200 (every check of
        // cuda-kernel-check and hybrid-check); MOE_TILED_ATTENTION=0 returns to attend_at.
        const char* e = std::getenv("MOE_TILED_ATTENTION");
        return !e || std::atoi(e) != 0;
    }();
    return on;
}

void attend_tiled_at(const AttentionShape& g, const float* q, int64_t T, const int32_t* positions,
                     const float* k, int64_t k_width, const float* v, int64_t v_width,
                     const float* sinks, float* out, cudaStream_t s) {
    if (T == 0) return;
    require(g.heads > 0 && g.kv_heads > 0 && g.heads % g.kv_heads == 0,
            "cuda::attend_tiled_at: heads must be a multiple of kv_heads");
    require(g.dim_v <= 32 * kMaxAcc, "cuda::attend_tiled_at: value head dimension " +
                                         std::to_string(g.dim_v) + " above " +
                                         std::to_string(32 * kMaxAcc));
    require(!g.values_in_keys || g.dim_v <= g.dim_qk,
            "cuda::attend_tiled_at: values in keys need dim_v <= dim_qk");
    const size_t bytes = shared_bytes(g);
    // Above the default 48 KiB (MLA's 576-wide latent rows) the kernel must ask for it.
    static size_t granted = (48 << 10) - 256;  // less the kernel's static shared memory
    if (bytes > granted) {
        MOE_CUDA(cudaFuncSetAttribute(attend_tiled_kernel,
                                      cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
        granted = bytes;
    }
    const dim3 grid(unsigned((T + kQueries - 1) / kQueries), unsigned(g.heads));
    attend_tiled_kernel<<<grid, kQueries * 32, bytes, s>>>(g, q, T, positions, k, k_width, v,
                                                           v_width, sinks, out);
    MOE_CUDA_LAUNCH();
}

}  // namespace moe::cuda
