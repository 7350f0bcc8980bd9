// packed_dequant.h: one thread per output value; the index arithmetic mirrors
// cpu/moe/kernels_impl.h (bf16_index, int8_index, int4_byte) and
// PackedMatrix::dequantize_block_row.
#include <cuda_bf16.h>

#include "cuda/cuda_check.h"
#include "cuda/packed_dequant.h"

namespace moe::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kRowBlock = 16;
constexpr int64_t kSuperBlock = 256;  // QK_K

__device__ float packed_value(const PackedView& m, int64_t b, int64_t j, int64_t k) {
    const uint8_t* wb = m.data + size_t(b) * m.block_bytes;
    switch (m.kind) {
        case PackedKind::Bf16: {
            const auto* w = reinterpret_cast<const __nv_bfloat16*>(wb);
            return __bfloat162float(w[(k >> 1) * 32 + j * 2 + (k & 1)]);
        }
        case PackedKind::Int8:
            return float(reinterpret_cast<const int8_t*>(wb)[(k >> 2) * 64 + j * 4 + (k & 3)]) *
                   m.scale[b * kRowBlock + j];
        case PackedKind::Int4: {
            const uint8_t byte = wb[(k >> 3) * 64 + j * 4 + (k & 3)];
            const int q = (k & 4) ? byte >> 4 : byte & 15;
            const int64_t s = (b * (m.kp / m.group) + k / m.group) * kRowBlock + j;
            // Unfused, as the CPU computes it (a fused multiply-add rounds differently).
            return __fadd_rn(__fmul_rn(m.gscale[s], float(q)), m.gmin[s]);
        }
        case PackedKind::Q4k: {
            const uint8_t byte = wb[(k >> 3) * 64 + j * 4 + (k & 3)];
            const int q = (k & 4) ? byte >> 4 : byte & 15;
            const int64_t g = (b * (m.kp / m.group) + k / m.group) * kRowBlock + j;
            const int64_t sb = (b * (m.kp / kSuperBlock) + k / kSuperBlock) * kRowBlock + j;
            return __fsub_rn(__fmul_rn(__fmul_rn(m.kd[sb], float(m.ksc[g])), float(q)),
                             __fmul_rn(m.kdmin[sb], float(m.kmin[g])));
        }
    }
    return 0.0f;
}

__global__ void dequantize_kernel(PackedView m, int64_t out_rows, __nv_bfloat16* out) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= out_rows * m.cols) return;
    const int64_t r = i / m.cols, k = i % m.cols;
    int64_t b, j;
    if (m.gate_up) {  // block 2i: gate rows [16i, 16i + 16); block 2i + 1: the same up rows
        const bool up = r >= m.rows;
        const int64_t rr = up ? r - m.rows : r;
        b = 2 * (rr / kRowBlock) + (up ? 1 : 0);
        j = rr % kRowBlock;
    } else {
        b = r / kRowBlock;
        j = r % kRowBlock;
    }
    out[i] = __float2bfloat16_rn(packed_value(m, b, j, k));
}

}  // namespace

void dequantize_packed(const PackedView& m, uint16_t* out, cudaStream_t s) {
    const int64_t out_rows = m.gate_up ? 2 * m.rows : m.rows;
    const int64_t n = out_rows * m.cols;
    if (n == 0) return;
    dequantize_kernel<<<unsigned((n + kThreads - 1) / kThreads), kThreads, 0, s>>>(
        m, out_rows, reinterpret_cast<__nv_bfloat16*>(out));
    MOE_CUDA_LAUNCH();
}

}  // namespace moe::cuda
