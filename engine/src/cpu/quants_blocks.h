#pragma once
// Internal to cpu/quants*.cpp: the block layouts of ggml's quantized types (ggml-common.h),
// byte for byte as they sit in GGUF files, and the per-format kernels the dispatcher in
// quants.cpp calls. Everything here is the scalar reference; the layouts are little-endian
// and unaligned-safe (all fields are bytes or 2-byte halves read through the struct, and the
// structs are packed to their natural size, which static_asserts check).
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/dtype.h"

namespace moe::quants {

constexpr int QK4_0 = 32, QK4_1 = 32, QK5_0 = 32, QK5_1 = 32, QK8_0 = 32, QK8_1 = 32;
constexpr int QK_K = 256;
constexpr int QK4_NL = 32, QK_MXFP4 = 32;
constexpr int K_SCALE_SIZE = 12;

struct BlockQ4_0 {
    uint16_t d;
    uint8_t qs[QK4_0 / 2];
};
struct BlockQ4_1 {
    uint16_t d, m;
    uint8_t qs[QK4_1 / 2];
};
struct BlockQ5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[QK5_0 / 2];
};
struct BlockQ5_1 {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
};
struct BlockQ8_0 {
    uint16_t d;
    int8_t qs[QK8_0];
};
struct BlockQ8_1 {
    uint16_t d, s;  // s = d * sum(qs), lets Q4_1/Q5_1 dots apply their min without a pass
    int8_t qs[QK8_1];
};
struct BlockMxfp4 {
    uint8_t e;  // E8M0 shared exponent
    uint8_t qs[QK_MXFP4 / 2];
};
struct BlockIq4Nl {
    uint16_t d;
    uint8_t qs[QK4_NL / 2];
};
struct BlockQ2K {
    uint8_t scales[QK_K / 16];  // low nibble scale, high nibble min
    uint8_t qs[QK_K / 4];
    uint16_t d, dmin;
};
struct BlockQ3K {
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[12];  // 16 six-bit signed scales (offset 32)
    uint16_t d;
};
struct BlockQ4K {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE];  // 8 six-bit scales and 8 six-bit mins
    uint8_t qs[QK_K / 2];
};
struct BlockQ5K {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
};
struct BlockQ6K {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d;
};
struct BlockQ8K {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];  // sums of groups of 16 quants, for the K-quants' mins
};
struct BlockIq4Xs {
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[QK_K / 64];
    uint8_t qs[QK_K / 2];
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36 &&
              sizeof(BlockMxfp4) == 17 && sizeof(BlockIq4Nl) == 18);
static_assert(sizeof(BlockQ2K) == 84 && sizeof(BlockQ3K) == 110 && sizeof(BlockQ4K) == 144 &&
              sizeof(BlockQ5K) == 176 && sizeof(BlockQ6K) == 210 && sizeof(BlockQ8K) == 292 &&
              sizeof(BlockIq4Xs) == 136);

// Scale and min j (0..7) of Q4_K/Q5_K's 12-byte packed 6-bit table.
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = uint8_t((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

inline float h2f(uint16_t h) {
    return f16_to_f32(h);
}
inline uint16_t f2h(float f) {
    return f32_to_f16(f);
}

// ggml's nearest_int: round half to even through the 1.5*2^23 trick; kept bit-identical
// because the quantizers' choices (and so their bytes) depend on it.
inline int nearest_int(float fval) {
    float val = fval + 12582912.f;
    int i;
    std::memcpy(&i, &val, sizeof(int));
    return (i & 0x007fffff) - 0x00400000;
}

// Values of the 4-bit non-linear codebooks (IQ4_NL/IQ4_XS) and of E2M1 doubled (MXFP4).
inline constexpr int8_t kValuesIq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};
inline constexpr int8_t kValuesMxfp4[16] = {0, 1,  2,  3,  4,  6,  8,  12,
                                            0, -1, -2, -3, -4, -6, -8, -12};

// E8M0 exponent to 2^(e-127) / 2 (the halving matches kValuesMxfp4 being doubled).
inline float e8m0_to_f32_half(uint8_t e) {
    const uint32_t bits = e < 2 ? 0x00200000u << e : uint32_t(e - 1) << 23;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

// Per-format kernels; `n` is the element count (a multiple of the block size).
// quants_legacy.cpp
void dequantize_q4_0(const void* x, float* y, int64_t n);
void dequantize_q4_1(const void* x, float* y, int64_t n);
void dequantize_q5_0(const void* x, float* y, int64_t n);
void dequantize_q5_1(const void* x, float* y, int64_t n);
void dequantize_q8_0(const void* x, float* y, int64_t n);
void dequantize_q8_1(const void* x, float* y, int64_t n);
void quantize_q4_0(const float* x, void* y, int64_t n);
void quantize_q4_1(const float* x, void* y, int64_t n);
void quantize_q5_0(const float* x, void* y, int64_t n);
void quantize_q5_1(const float* x, void* y, int64_t n);
void quantize_q8_0(const float* x, void* y, int64_t n);
void quantize_q8_1(const float* x, void* y, int64_t n);
float dot_q4_0_q8_0(const void* x, const void* y, int64_t n);
float dot_q4_1_q8_1(const void* x, const void* y, int64_t n);
float dot_q5_0_q8_0(const void* x, const void* y, int64_t n);
float dot_q5_1_q8_1(const void* x, const void* y, int64_t n);
float dot_q8_0_q8_0(const void* x, const void* y, int64_t n);
// quants_k.cpp
void dequantize_q2_k(const void* x, float* y, int64_t n);
void dequantize_q3_k(const void* x, float* y, int64_t n);
void dequantize_q4_k(const void* x, float* y, int64_t n);
void dequantize_q5_k(const void* x, float* y, int64_t n);
void dequantize_q6_k(const void* x, float* y, int64_t n);
void dequantize_q8_k(const void* x, float* y, int64_t n);
void quantize_q2_k(const float* x, void* y, int64_t n);
void quantize_q3_k(const float* x, void* y, int64_t n);
void quantize_q4_k(const float* x, void* y, int64_t n);
void quantize_q5_k(const float* x, void* y, int64_t n);
void quantize_q6_k(const float* x, void* y, int64_t n);
void quantize_q8_k(const float* x, void* y, int64_t n);
float dot_q2_k_q8_k(const void* x, const void* y, int64_t n);
float dot_q3_k_q8_k(const void* x, const void* y, int64_t n);
float dot_q4_k_q8_k(const void* x, const void* y, int64_t n);
float dot_q5_k_q8_k(const void* x, const void* y, int64_t n);
float dot_q6_k_q8_k(const void* x, const void* y, int64_t n);
// quants_nl.cpp
void dequantize_iq4_nl(const void* x, float* y, int64_t n);
void dequantize_iq4_xs(const void* x, float* y, int64_t n);
void dequantize_mxfp4(const void* x, float* y, int64_t n);
void quantize_iq4_nl(const float* x, void* y, int64_t n);
void quantize_iq4_xs(const float* x, void* y, int64_t n);
void quantize_mxfp4(const float* x, void* y, int64_t n);
float dot_iq4_nl_q8_0(const void* x, const void* y, int64_t n);
float dot_iq4_xs_q8_k(const void* x, const void* y, int64_t n);
float dot_mxfp4_q8_0(const void* x, const void* y, int64_t n);

}  // namespace moe::quants
