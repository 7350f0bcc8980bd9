// The 32-element block formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q8_1: ggml's reference
// dequantizers, its *_ref quantizers (the ones model files are made with) and its scalar
// vec_dot kernels. Arithmetic order follows ggml exactly so results are bit-identical.
#include <algorithm>
#include <cfloat>

#include "cpu/quants_blocks.h"

namespace moe::quants {

namespace {

// ggml's q4/q5 quantizers truncate toward zero through an int8 cast before clamping.
inline uint8_t trunc_clamp(float v, int hi) {
    return uint8_t(std::min(hi, int(int8_t(v))));
}

// The signed value of largest magnitude (the first one on ties), as the symmetric formats use.
inline float signed_absmax(const float* x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; ++j) {
        if (amax < std::fabs(x[j])) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    }
    return max;
}

}  // namespace

void dequantize_q4_0(const void* vx, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ4_0*>(vx);
    for (int64_t i = 0; i < n / QK4_0; ++i, y += QK4_0) {
        const float d = h2f(x[i].d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
            y[j] = float((x[i].qs[j] & 0x0F) - 8) * d;
            y[j + QK4_0 / 2] = float((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void dequantize_q4_1(const void* vx, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ4_1*>(vx);
    for (int64_t i = 0; i < n / QK4_1; ++i, y += QK4_1) {
        const float d = h2f(x[i].d), m = h2f(x[i].m);
        for (int j = 0; j < QK4_1 / 2; ++j) {
            y[j] = float(x[i].qs[j] & 0x0F) * d + m;
            y[j + QK4_1 / 2] = float(x[i].qs[j] >> 4) * d + m;
        }
    }
}

void dequantize_q5_0(const void* vx, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ5_0*>(vx);
    for (int64_t i = 0; i < n / QK5_0; ++i, y += QK5_0) {
        const float d = h2f(x[i].d);
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK5_0 / 2; ++j) {
            const int h0 = int(((qh >> j) << 4) & 0x10);
            const int h1 = int((qh >> (j + 12)) & 0x10);
            y[j] = float(((x[i].qs[j] & 0x0F) | h0) - 16) * d;
            y[j + QK5_0 / 2] = float(((x[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

void dequantize_q5_1(const void* vx, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ5_1*>(vx);
    for (int64_t i = 0; i < n / QK5_1; ++i, y += QK5_1) {
        const float d = h2f(x[i].d), m = h2f(x[i].m);
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK5_1 / 2; ++j) {
            const int h0 = int(((qh >> j) << 4) & 0x10);
            const int h1 = int((qh >> (j + 12)) & 0x10);
            y[j] = float((x[i].qs[j] & 0x0F) | h0) * d + m;
            y[j + QK5_1 / 2] = float((x[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

void dequantize_q8_0(const void* vx, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ8_0*>(vx);
    for (int64_t i = 0; i < n / QK8_0; ++i, y += QK8_0) {
        const float d = h2f(x[i].d);
        for (int j = 0; j < QK8_0; ++j) y[j] = float(x[i].qs[j]) * d;
    }
}

void dequantize_q8_1(const void* vx, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ8_1*>(vx);
    for (int64_t i = 0; i < n / QK8_1; ++i, y += QK8_1) {
        const float d = h2f(x[i].d);
        for (int j = 0; j < QK8_1; ++j) y[j] = float(x[i].qs[j]) * d;
    }
}

void quantize_q4_0(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<BlockQ4_0*>(vy);
    for (int64_t i = 0; i < n / QK4_0; ++i, x += QK4_0) {
        const float d = signed_absmax(x, QK4_0) / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
            const uint8_t q0 = trunc_clamp(x[j] * id + 8.5f, 15);
            const uint8_t q1 = trunc_clamp(x[j + QK4_0 / 2] * id + 8.5f, 15);
            y[i].qs[j] = uint8_t(q0 | (q1 << 4));
        }
    }
}

void quantize_q4_1(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<BlockQ4_1*>(vy);
    for (int64_t i = 0; i < n / QK4_1; ++i, x += QK4_1) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK4_1; ++j) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        y[i].m = f2h(min);
        for (int j = 0; j < QK4_1 / 2; ++j) {
            const uint8_t q0 = trunc_clamp((x[j] - min) * id + 0.5f, 15);
            const uint8_t q1 = trunc_clamp((x[j + QK4_1 / 2] - min) * id + 0.5f, 15);
            y[i].qs[j] = uint8_t(q0 | (q1 << 4));
        }
    }
}

void quantize_q5_0(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<BlockQ5_0*>(vy);
    for (int64_t i = 0; i < n / QK5_0; ++i, x += QK5_0) {
        const float d = signed_absmax(x, QK5_0) / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; ++j) {
            const uint8_t q0 = trunc_clamp(x[j] * id + 16.5f, 31);
            const uint8_t q1 = trunc_clamp(x[j + QK5_0 / 2] * id + 16.5f, 31);
            y[i].qs[j] = uint8_t((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= uint32_t((q0 & 0x10u) >> 4) << j;
            qh |= uint32_t((q1 & 0x10u) >> 4) << (j + QK5_0 / 2);
        }
        std::memcpy(y[i].qh, &qh, 4);
    }
}

void quantize_q5_1(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<BlockQ5_1*>(vy);
    for (int64_t i = 0; i < n / QK5_1; ++i, x += QK5_1) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK5_1; ++j) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 31;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        y[i].m = f2h(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; ++j) {
            // ggml's q5_1 has no clamp: (x - min) * id <= 31 + rounding, and uint8 wraps at 32
            // only for inputs that cannot occur (x <= max).
            const uint8_t q0 = uint8_t((x[j] - min) * id + 0.5f);
            const uint8_t q1 = uint8_t((x[j + QK5_1 / 2] - min) * id + 0.5f);
            y[i].qs[j] = uint8_t((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= uint32_t((q0 & 0x10u) >> 4) << j;
            qh |= uint32_t((q1 & 0x10u) >> 4) << (j + QK5_1 / 2);
        }
        std::memcpy(y[i].qh, &qh, 4);
    }
}

void quantize_q8_0(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<BlockQ8_0*>(vy);
    for (int64_t i = 0; i < n / QK8_0; ++i, x += QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        for (int j = 0; j < QK8_0; ++j) y[i].qs[j] = int8_t(std::round(x[j] * id));
    }
}

void quantize_q8_1(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<BlockQ8_1*>(vy);
    for (int64_t i = 0; i < n / QK8_1; ++i, x += QK8_1) {
        float amax = 0.0f;
        for (int j = 0; j < QK8_1; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        int sum = 0;
        for (int j = 0; j < QK8_1 / 2; ++j) {
            y[i].qs[j] = int8_t(std::round(x[j] * id));
            y[i].qs[j + QK8_1 / 2] = int8_t(std::round(x[j + QK8_1 / 2] * id));
            sum += y[i].qs[j] + y[i].qs[j + QK8_1 / 2];
        }
        y[i].s = f2h(float(sum) * d);
    }
}

// The dots: an exact integer sum per block, then one float multiply-add per block in block
// order, the way ggml's scalar kernels combine them.

float dot_q4_0_q8_0(const void* vx, const void* vy, int64_t n) {
    const auto* x = static_cast<const BlockQ4_0*>(vx);
    const auto* y = static_cast<const BlockQ8_0*>(vy);
    float sumf = 0;
    for (int64_t ib = 0; ib < n / QK8_0; ++ib) {
        int s0 = 0, s1 = 0;
        for (int j = 0; j < QK8_0 / 2; ++j) {
            s0 += ((x[ib].qs[j] & 0x0F) - 8) * y[ib].qs[j];
            s1 += ((x[ib].qs[j] >> 4) - 8) * y[ib].qs[j + QK8_0 / 2];
        }
        sumf += float(s0 + s1) * h2f(x[ib].d) * h2f(y[ib].d);
    }
    return sumf;
}

float dot_q4_1_q8_1(const void* vx, const void* vy, int64_t n) {
    const auto* x = static_cast<const BlockQ4_1*>(vx);
    const auto* y = static_cast<const BlockQ8_1*>(vy);
    float sumf = 0;
    for (int64_t ib = 0; ib < n / QK8_1; ++ib) {
        int s0 = 0, s1 = 0;
        for (int j = 0; j < QK8_1 / 2; ++j) {
            s0 += (x[ib].qs[j] & 0x0F) * y[ib].qs[j];
            s1 += (x[ib].qs[j] >> 4) * y[ib].qs[j + QK8_1 / 2];
        }
        sumf += (h2f(x[ib].d) * h2f(y[ib].d)) * float(s0 + s1) + h2f(x[ib].m) * h2f(y[ib].s);
    }
    return sumf;
}

float dot_q5_0_q8_0(const void* vx, const void* vy, int64_t n) {
    const auto* x = static_cast<const BlockQ5_0*>(vx);
    const auto* y = static_cast<const BlockQ8_0*>(vy);
    float sumf = 0;
    for (int64_t ib = 0; ib < n / QK8_0; ++ib) {
        uint32_t qh;
        std::memcpy(&qh, x[ib].qh, 4);
        int s0 = 0, s1 = 0;
        for (int j = 0; j < QK8_0 / 2; ++j) {
            const int h0 = int(((qh >> j) << 4) & 0x10);
            const int h1 = int((qh >> (j + 12)) & 0x10);
            s0 += (((x[ib].qs[j] & 0x0F) | h0) - 16) * y[ib].qs[j];
            s1 += (((x[ib].qs[j] >> 4) | h1) - 16) * y[ib].qs[j + QK8_0 / 2];
        }
        sumf += (h2f(x[ib].d) * h2f(y[ib].d)) * float(s0 + s1);
    }
    return sumf;
}

float dot_q5_1_q8_1(const void* vx, const void* vy, int64_t n) {
    const auto* x = static_cast<const BlockQ5_1*>(vx);
    const auto* y = static_cast<const BlockQ8_1*>(vy);
    float sumf = 0;
    for (int64_t ib = 0; ib < n / QK8_1; ++ib) {
        uint32_t qh;
        std::memcpy(&qh, x[ib].qh, 4);
        int s0 = 0, s1 = 0;
        for (int j = 0; j < QK8_1 / 2; ++j) {
            const int h0 = int(((qh >> j) << 4) & 0x10);
            const int h1 = int((qh >> (j + 12)) & 0x10);
            s0 += ((x[ib].qs[j] & 0x0F) | h0) * y[ib].qs[j];
            s1 += ((x[ib].qs[j] >> 4) | h1) * y[ib].qs[j + QK8_1 / 2];
        }
        sumf += (h2f(x[ib].d) * h2f(y[ib].d)) * float(s0 + s1) + h2f(x[ib].m) * h2f(y[ib].s);
    }
    return sumf;
}

float dot_q8_0_q8_0(const void* vx, const void* vy, int64_t n) {
    const auto* x = static_cast<const BlockQ8_0*>(vx);
    const auto* y = static_cast<const BlockQ8_0*>(vy);
    float sumf = 0;
    for (int64_t ib = 0; ib < n / QK8_0; ++ib) {
        int s = 0;
        for (int j = 0; j < QK8_0; ++j) s += x[ib].qs[j] * y[ib].qs[j];
        sumf += float(s) * (h2f(x[ib].d) * h2f(y[ib].d));
    }
    return sumf;
}

}  // namespace moe::quants
