#pragma once
// The hook through which the fused MoE operator multiplies GGUF-native expert weights (used in
// place from the memory map, never repacked): one call computes a run of row dot products
// against one activation row that is already quantized to vec_dot_type(type).
//
//   out[r] = vec_dot(type, weight_rows + r * row_bytes, act, n)   for r < rows
//
// The default for every type (used until something registers a faster one) loops over
// moe::vec_dot from cpu/quants.h: correct, bit-exact with ggml's scalar code, slow. SIMD
// implementations (engine/src/cpu/moe/gguf_*.cpp) register themselves with
// register_gguf_row_dot(), typically from a static initializer or an explicit init call; they
// must agree with the scalar vec_dot to float-summation-order accuracy.
#include <cstddef>
#include <cstdint>

#include "formats/ggml_types.h"

namespace moe {

struct GgufRowDot {
    // weight_rows: `rows` consecutive rows of `row_bytes` bytes each (ggml_row_size(type, n));
    // act: one activation row of n elements in vec_dot_type(type); out: `rows` floats.
    void (*dot_rows)(const void* weight_rows, size_t row_bytes, int64_t rows, const void* act,
                     int64_t n, float* out);
    const char* variant;  // e.g. "scalar", "avx2", "avx512" (for logs and test names)
};

// Replaces the implementation for `type` (thread-safe; call before kernels run — an
// implementation must not be swapped while the operator is using it).
void register_gguf_row_dot(GgmlType type, GgufRowDot impl);

// The registered implementation for `type`, or the scalar vec_dot fallback. Throws moe::Error
// if the type has no CPU kernels at all (see has_quant_kernels).
const GgufRowDot& gguf_row_dot(GgmlType type);

// The scalar fallback for `type` (always available; tests compare registered versions to it).
const GgufRowDot& gguf_row_dot_scalar(GgmlType type);

}  // namespace moe
