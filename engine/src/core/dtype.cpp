#include "core/dtype.h"

#include "core/error.h"

#include <algorithm>
#include <array>

namespace moe {

size_t dtype_size(DType t) {
    switch (t) {
        case DType::F64:
        case DType::I64:
            return 8;
        case DType::F32:
        case DType::I32:
            return 4;
        case DType::F16:
        case DType::BF16:
        case DType::I16:
            return 2;
        case DType::F8_E4M3:
        case DType::I8:
        case DType::U8:
        case DType::BOOL:
            return 1;
    }
    return 0;
}

std::string_view dtype_name(DType t) {
    switch (t) {
        case DType::F32:
            return "F32";
        case DType::F16:
            return "F16";
        case DType::BF16:
            return "BF16";
        case DType::F8_E4M3:
            return "F8_E4M3";
        case DType::F64:
            return "F64";
        case DType::I8:
            return "I8";
        case DType::I16:
            return "I16";
        case DType::I32:
            return "I32";
        case DType::I64:
            return "I64";
        case DType::U8:
            return "U8";
        case DType::BOOL:
            return "BOOL";
    }
    return "?";
}

bool parse_safetensors_dtype(std::string_view s, DType& out) {
    static constexpr std::array<std::pair<std::string_view, DType>, 11> kNames{{
        {"F32", DType::F32},
        {"F16", DType::F16},
        {"BF16", DType::BF16},
        {"F8_E4M3", DType::F8_E4M3},
        {"F64", DType::F64},
        {"I8", DType::I8},
        {"I16", DType::I16},
        {"I32", DType::I32},
        {"I64", DType::I64},
        {"U8", DType::U8},
        {"BOOL", DType::BOOL},
    }};
    for (const auto& [name, t] : kNames) {
        if (name == s) {
            out = t;
            return true;
        }
    }
    return false;
}

float f16_to_f32(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            int e = -1;
            do {
                ++e;
                mant <<= 1;
            } while ((mant & 0x400u) == 0);
            bits = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | (exp + 127 - 15) << 23 | (mant << 13);
    }
    return std::bit_cast<float>(bits);
}

uint16_t f32_to_f16(float f) {
    const uint32_t u = std::bit_cast<uint32_t>(f);
    const uint32_t sign = (u >> 16) & 0x8000u;
    const uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00u);   // NaN
    if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // overflow -> inf
    if (abs < 0x38800000u) {                                  // subnormal or zero in f16
        if (abs < 0x33000000u) return uint16_t(sign);
        const uint32_t exp = abs >> 23;
        const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126 - exp;  // 14 + (113 - exp)
        uint32_t half = mant >> (shift);
        const uint32_t rem = mant & ((1u << shift) - 1);
        const uint32_t halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (half & 1u))) ++half;
        return uint16_t(sign | half);
    }
    uint32_t v = abs - 0x38000000u;  // rebias exponent 127 -> 15
    v += 0xfffu + ((v >> 13) & 1u);  // round to nearest even
    return uint16_t(sign | (v >> 13));
}

float f8e4m3_to_f32(uint8_t v) {
    const uint32_t sign = uint32_t(v & 0x80u) << 24;
    const uint32_t exp = (v >> 3) & 0xfu;
    const uint32_t mant = v & 0x7u;
    if (exp == 0xf && mant == 0x7) return std::bit_cast<float>(sign | 0x7fc00000u);
    float mag;
    if (exp == 0) {
        mag = std::ldexp(float(mant), -9);  // subnormal: mant/8 * 2^-6
    } else {
        mag = std::ldexp(1.0f + float(mant) / 8.0f, int(exp) - 7);
    }
    return sign ? -mag : mag;
}

uint8_t f32_to_f8e4m3(float f) {
    // Exhaustive nearest search over the 127 non-negative finite codes: simple and exact
    // (ties to even code), used only by tools and tests.
    if (std::isnan(f)) return 0x7f;
    const uint8_t sign = std::signbit(f) ? 0x80 : 0;
    const float a = std::min(std::fabs(f), 448.0f);
    uint8_t best = 0;
    float best_err = INFINITY;
    for (uint8_t c = 0; c < 0x7f; ++c) {
        const float err = std::fabs(f8e4m3_to_f32(c) - a);
        if (err < best_err || (err == best_err && (c & 1) == 0)) {
            best = c;
            best_err = err;
        }
    }
    return uint8_t(sign | best);
}

void convert_to_f32(DType t, const void* src, float* dst, size_t n) {
    switch (t) {
        case DType::F32:
            std::memcpy(dst, src, n * 4);
            return;
        case DType::BF16: {
            const auto* s = static_cast<const uint16_t*>(src);
#pragma omp simd
            for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
            return;
        }
        case DType::F16: {
            const auto* s = static_cast<const uint16_t*>(src);
            for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
            return;
        }
        case DType::F8_E4M3: {
            const auto* s = static_cast<const uint8_t*>(src);
            for (size_t i = 0; i < n; ++i) dst[i] = f8e4m3_to_f32(s[i]);
            return;
        }
        case DType::F64: {
            const auto* s = static_cast<const double*>(src);
            for (size_t i = 0; i < n; ++i) dst[i] = float(s[i]);
            return;
        }
        case DType::I32: {
            const auto* s = static_cast<const int32_t*>(src);
            for (size_t i = 0; i < n; ++i) dst[i] = float(s[i]);
            return;
        }
        case DType::I64: {
            const auto* s = static_cast<const int64_t*>(src);
            for (size_t i = 0; i < n; ++i) dst[i] = float(s[i]);
            return;
        }
        default:
            break;
    }
    throw Error("convert_to_f32: unsupported dtype " + std::string(dtype_name(t)));
}

}  // namespace moe
