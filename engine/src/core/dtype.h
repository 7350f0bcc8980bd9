#pragma once
// Element types of stored tensors and the scalar conversions between them.
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace moe {

enum class DType : uint8_t { F32, F16, BF16, F8_E4M3, F64, I8, I16, I32, I64, U8, BOOL };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);
// Parses safetensors' dtype strings ("F32", "BF16", "F8_E4M3", ...). Returns false if unknown.
bool parse_safetensors_dtype(std::string_view s, DType& out);

inline float bf16_to_f32(uint16_t v) {
    return std::bit_cast<float>(uint32_t(v) << 16);
}

// Round-to-nearest-even, NaN preserved (the rounding torch uses).
inline uint16_t f32_to_bf16(float f) {
    uint32_t u = std::bit_cast<uint32_t>(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return uint16_t(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// OCP FP8 E4M3 (the "fn" variant: no infinities, 0x7f/0xff are NaN), as DeepSeek-V3 stores it.
float f8e4m3_to_f32(uint8_t v);
uint8_t f32_to_f8e4m3(float f);

// Converts `n` elements of type `t` at `src` to float.
void convert_to_f32(DType t, const void* src, float* dst, size_t n);

}  // namespace moe
