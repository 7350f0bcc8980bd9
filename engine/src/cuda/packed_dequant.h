#pragma once
// Expert matrices in the CPU operator's packed layouts (cpu/moe/moe_kernels.h: 16-row blocks,
// BF16 / INT8 / INT4 / Q4K) turned into row-major bf16 on the GPU, so that a large prefill
// batch can stream a CPU-resident expert's packed bytes over PCIe once and multiply on the GPU
// instead of on the CPU (hybrid/expert_streamer.h). CUDA builds only; device pointers.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <functional>

namespace moe {
struct PackedMatrix;
}

namespace moe::cuda {

enum class PackedKind : int { Bf16 = 0, Int8 = 1, Int4 = 2, Q4k = 3 };

// A packed matrix's arrays on the device (those of its format; the others null).
struct PackedView {
    PackedKind kind = PackedKind::Bf16;
    int64_t rows = 0, cols = 0, kp = 0, blocks = 0, group = 0;
    bool gate_up = false;
    size_t block_bytes = 0;
    const uint8_t* data = nullptr;
    const float* scale = nullptr;   // INT8
    const float* gscale = nullptr;  // INT4
    const float* gmin = nullptr;    // INT4
    const uint8_t* ksc = nullptr;   // Q4K
    const uint8_t* kmin = nullptr;  // Q4K
    const float* kd = nullptr;      // Q4K
    const float* kdmin = nullptr;   // Q4K
};

// Calls fn(host bytes, count) for each array of `m` the unpacking reads (empty ones too), in
// one fixed order: the data, then the INT8, INT4 and Q4K scale arrays (packed_view.cpp).
void for_each_packed_array(const PackedMatrix& m,
                           const std::function<void(const void*, size_t)>& fn);

// The view of `m` once `place(host bytes, count)` has put each of its non-empty arrays on the
// device and returned the device address (packed_view.cpp; host code).
PackedView packed_view(const PackedMatrix& m,
                       const std::function<const uint8_t*(const void*, size_t)>& place);

// out [R, cols] bf16 row-major, R = 2 * rows for gate_up (gate rows, then up rows), else rows:
// the values PackedMatrix::dequantize_row gives, rounded to bf16.
void dequantize_packed(const PackedView& m, uint16_t* out, cudaStream_t s);

}  // namespace moe::cuda
