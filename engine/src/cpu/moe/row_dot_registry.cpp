// The GGUF row-dot registry (gguf_row_dot.h): a fixed table indexed by ggml type id, filled
// with the scalar vec_dot fallback and overwritten by register_gguf_row_dot.
#include <array>
#include <mutex>
#include <string>
#include <utility>

#include "core/error.h"
#include "cpu/moe/gguf_row_dot.h"
#include "cpu/quants.h"

namespace moe {
namespace {

// The fallback does not know the type from its arguments alone, so there is one instantiation
// per type id (ggml ids are < 64).
template <uint32_t Id>
void scalar_rows(const void* w, size_t row_bytes, int64_t rows, const void* act, int64_t n,
                 float* out) {
    const auto* p = static_cast<const uint8_t*>(w);
    for (int64_t r = 0; r < rows; ++r)
        out[r] = vec_dot(GgmlType(Id), p + size_t(r) * row_bytes, act, n);
}

constexpr size_t kTypes = 64;

template <size_t... I>
std::array<GgufRowDot, kTypes> make_scalar_table(std::index_sequence<I...>) {
    return {GgufRowDot{&scalar_rows<uint32_t(I)>, "scalar"}...};
}

struct Registry {
    std::mutex mu;
    std::array<GgufRowDot, kTypes> scalar = make_scalar_table(std::make_index_sequence<kTypes>{});
    std::array<GgufRowDot, kTypes> impl = scalar;
};

Registry& registry() {
    static Registry r;
    return r;
}

size_t type_index(GgmlType t) {
    const auto i = size_t(t);
    require(i < kTypes, "gguf_row_dot: ggml type id " + std::to_string(i) + " out of range");
    return i;
}

}  // namespace

void register_gguf_row_dot(GgmlType type, GgufRowDot impl) {
    require(impl.dot_rows != nullptr,
            "register_gguf_row_dot: null dot_rows for " + ggml_type_name(type));
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    r.impl[type_index(type)] = impl;
}

const GgufRowDot& gguf_row_dot(GgmlType type) {
    require_quant_kernels(type, "gguf_row_dot");
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    return r.impl[type_index(type)];
}

const GgufRowDot& gguf_row_dot_scalar(GgmlType type) {
    require_quant_kernels(type, "gguf_row_dot_scalar");
    return registry().scalar[type_index(type)];
}

}  // namespace moe
