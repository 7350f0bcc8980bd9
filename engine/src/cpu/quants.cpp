// Dispatch from ggml type to the per-format kernels (quants_legacy/k/nl.cpp), plus the plain
// float formats F32, F16 and BF16.
#include "cpu/quants.h"

#include "core/dtype.h"
#include "core/error.h"
#include "cpu/quants_blocks.h"

namespace moe {

namespace {

using Dequant = void (*)(const void*, float*, int64_t);
using Quant = void (*)(const float*, void*, int64_t);
using Dot = float (*)(const void*, const void*, int64_t);

void dequant_f32(const void* x, float* y, int64_t n) {
    std::memcpy(y, x, size_t(n) * 4);
}
void dequant_f16(const void* x, float* y, int64_t n) {
    const auto* h = static_cast<const uint16_t*>(x);
    for (int64_t i = 0; i < n; ++i) y[i] = f16_to_f32(h[i]);
}
void dequant_bf16(const void* x, float* y, int64_t n) {
    const auto* h = static_cast<const uint16_t*>(x);
    for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_f32(h[i]);
}
void quant_f32(const float* x, void* y, int64_t n) {
    std::memcpy(y, x, size_t(n) * 4);
}
void quant_f16(const float* x, void* y, int64_t n) {
    auto* h = static_cast<uint16_t*>(y);
    for (int64_t i = 0; i < n; ++i) h[i] = f32_to_f16(x[i]);
}
void quant_bf16(const float* x, void* y, int64_t n) {
    auto* h = static_cast<uint16_t*>(y);
    for (int64_t i = 0; i < n; ++i) h[i] = f32_to_bf16(x[i]);
}
// ggml_vec_dot_f32/f16/bf16: float products, summed in double (ggml_float).
float dot_f32(const void* vx, const void* vy, int64_t n) {
    const auto* x = static_cast<const float*>(vx);
    const auto* y = static_cast<const float*>(vy);
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += double(x[i] * y[i]);
    return float(s);
}
float dot_f16(const void* vx, const void* vy, int64_t n) {
    const auto* x = static_cast<const uint16_t*>(vx);
    const auto* y = static_cast<const uint16_t*>(vy);
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += double(f16_to_f32(x[i]) * f16_to_f32(y[i]));
    return float(s);
}
float dot_bf16(const void* vx, const void* vy, int64_t n) {
    const auto* x = static_cast<const uint16_t*>(vx);
    const auto* y = static_cast<const uint16_t*>(vy);
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += double(bf16_to_f32(x[i]) * bf16_to_f32(y[i]));
    return float(s);
}

struct Kernels {
    GgmlType type;
    Dequant dequantize;
    Quant quantize;
    GgmlType dot_type;
    Dot dot;  // nullptr for the activation-only formats (Q8_1, Q8_K)
};

namespace q = quants;
constexpr Kernels kKernels[] = {
    {GgmlType::F32, dequant_f32, quant_f32, GgmlType::F32, dot_f32},
    {GgmlType::F16, dequant_f16, quant_f16, GgmlType::F16, dot_f16},
    {GgmlType::BF16, dequant_bf16, quant_bf16, GgmlType::BF16, dot_bf16},
    {GgmlType::Q4_0, q::dequantize_q4_0, q::quantize_q4_0, GgmlType::Q8_0, q::dot_q4_0_q8_0},
    {GgmlType::Q4_1, q::dequantize_q4_1, q::quantize_q4_1, GgmlType::Q8_1, q::dot_q4_1_q8_1},
    {GgmlType::Q5_0, q::dequantize_q5_0, q::quantize_q5_0, GgmlType::Q8_0, q::dot_q5_0_q8_0},
    {GgmlType::Q5_1, q::dequantize_q5_1, q::quantize_q5_1, GgmlType::Q8_1, q::dot_q5_1_q8_1},
    {GgmlType::Q8_0, q::dequantize_q8_0, q::quantize_q8_0, GgmlType::Q8_0, q::dot_q8_0_q8_0},
    {GgmlType::Q8_1, q::dequantize_q8_1, q::quantize_q8_1, GgmlType::Q8_1, nullptr},
    {GgmlType::Q2_K, q::dequantize_q2_k, q::quantize_q2_k, GgmlType::Q8_K, q::dot_q2_k_q8_k},
    {GgmlType::Q3_K, q::dequantize_q3_k, q::quantize_q3_k, GgmlType::Q8_K, q::dot_q3_k_q8_k},
    {GgmlType::Q4_K, q::dequantize_q4_k, q::quantize_q4_k, GgmlType::Q8_K, q::dot_q4_k_q8_k},
    {GgmlType::Q5_K, q::dequantize_q5_k, q::quantize_q5_k, GgmlType::Q8_K, q::dot_q5_k_q8_k},
    {GgmlType::Q6_K, q::dequantize_q6_k, q::quantize_q6_k, GgmlType::Q8_K, q::dot_q6_k_q8_k},
    {GgmlType::Q8_K, q::dequantize_q8_k, q::quantize_q8_k, GgmlType::Q8_K, nullptr},
    {GgmlType::IQ4_NL, q::dequantize_iq4_nl, q::quantize_iq4_nl, GgmlType::Q8_0,
     q::dot_iq4_nl_q8_0},
    {GgmlType::IQ4_XS, q::dequantize_iq4_xs, q::quantize_iq4_xs, GgmlType::Q8_K,
     q::dot_iq4_xs_q8_k},
    {GgmlType::MXFP4, q::dequantize_mxfp4, q::quantize_mxfp4, GgmlType::Q8_0, q::dot_mxfp4_q8_0},
};

const Kernels* find_kernels(GgmlType t) {
    for (const auto& k : kKernels)
        if (k.type == t) return &k;
    return nullptr;
}

const Kernels& kernels(GgmlType t, int64_t n, const char* op) {
    const Kernels* k = find_kernels(t);
    if (!k)
        throw Error(std::string(op) + ": ggml type " + ggml_type_name(t) + " has no CPU kernels");
    const int64_t bs = ggml_block_size(t);
    require(n >= 0 && n % bs == 0, std::string(op) + ": a " + ggml_type_name(t) + " row of " +
                                       std::to_string(n) + " elements; expected a multiple of " +
                                       std::to_string(bs));
    return *k;
}

}  // namespace

bool has_quant_kernels(GgmlType t) {
    return find_kernels(t) != nullptr;
}

void require_quant_kernels(GgmlType t, const std::string& what) {
    if (!has_quant_kernels(t))
        throw Error(what + " is stored as " + ggml_type_name(t) + ", which has no CPU kernels");
}

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
    kernels(type, n, "dequantize_row").dequantize(src, dst, n);
}

void quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
    kernels(type, n, "quantize_row").quantize(src, dst, n);
}

GgmlType vec_dot_type(GgmlType weight_type) {
    return kernels(weight_type, 0, "vec_dot_type").dot_type;
}

void quantize_activation(GgmlType act_type, const float* x, void* dst, int64_t n) {
    kernels(act_type, n, "quantize_activation").quantize(x, dst, n);
}

float vec_dot(GgmlType weight_type, const void* weight_row, const void* activation, int64_t n) {
    const Kernels& k = kernels(weight_type, n, "vec_dot");
    if (!k.dot)
        throw Error("vec_dot: " + ggml_type_name(weight_type) +
                    " is an activation format, not a weight format");
    return k.dot(weight_row, activation, n);
}

}  // namespace moe
