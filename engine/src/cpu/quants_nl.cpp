// The codebook formats: IQ4_NL (32-element blocks of a 16-entry non-linear codebook with an
// fp16 scale), IQ4_XS (the same codebook in 256-element super-blocks with 6-bit sub-scales)
// and MXFP4 (OCP microscaling: E2M1 values with a shared E8M0 exponent per 32 elements).
// ggml's dequantizers, reference quantizers and scalar vec_dot kernels, in ggml's float order.
#include <algorithm>

#include "cpu/quants_blocks.h"

namespace moe::quants {

namespace {

constexpr float kGroupMaxEps = 1e-15f;

// Index of the codebook value nearest to x (codebook sorted ascending; ties go up).
int best_index_int8(int n, const int8_t* val, float x) {
    if (x <= val[0]) return 0;
    if (x >= val[n - 1]) return n - 1;
    int ml = 0, mu = n - 1;
    while (mu - ml > 1) {
        const int mav = (ml + mu) / 2;
        if (x < val[mav])
            mu = mav;
        else
            ml = mav;
    }
    return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
}

// ggml's quantize_row_iq4_nl_impl without importance weights: a weighted least-squares
// scale per 32-element block (2*ntry+1 candidate scales when ntry > 0), then for super-blocks
// (IQ4_XS) 6-bit sub-scales under one fp16 super-scale and a final pass against them.
void iq4_quantize_superblock(int super_block_size, const float* x, uint16_t* dh, uint8_t* q4,
                             uint16_t* scales_h, uint8_t* scales_l, int ntry) {
    constexpr int block_size = 32;
    float scales[QK_K / block_size];
    float weight[block_size];
    uint8_t L[QK_K] = {};  // ggml leaves an all-zero IQ4_NL block's quants unset; we use 0
    std::memset(q4, 0, size_t(super_block_size / 2));
    *dh = f2h(0.f);
    float max_scale = 0, amax_scale = 0;
    const int nb = super_block_size / block_size;
    for (int ib = 0; ib < nb; ++ib) {
        const float* xb = x + ib * block_size;
        uint8_t* Lb = L + ib * block_size;
        for (int j = 0; j < block_size; ++j) weight[j] = xb[j] * xb[j];
        float amax = 0, max = 0;
        for (int j = 0; j < block_size; ++j) {
            const float ax = std::fabs(xb[j]);
            if (ax > amax) {
                amax = ax;
                max = xb[j];
            }
        }
        if (amax < kGroupMaxEps) {
            scales[ib] = 0;
            continue;
        }
        const float v0 = float(kValuesIq4nl[0]);
        float d = ntry > 0 ? -max / v0 : max / v0;
        float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < block_size; ++j) {
            const int l = best_index_int8(16, kValuesIq4nl, id * xb[j]);
            Lb[j] = uint8_t(l);
            const float q = float(kValuesIq4nl[l]);
            sumqx += weight[j] * q * xb[j];
            sumq2 += weight[j] * q * q;
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
        float best = d * sumqx;
        for (int itry = -ntry; itry <= ntry; ++itry) {
            id = (float(itry) + v0) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < block_size; ++j) {
                const int l = best_index_int8(16, kValuesIq4nl, id * xb[j]);
                const float q = float(kValuesIq4nl[l]);
                sumqx += weight[j] * q * xb[j];
                sumq2 += weight[j] * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
        if (std::fabs(d) > amax_scale) {
            amax_scale = std::fabs(d);
            max_scale = d;
        }
    }
    if (nb > 1) {
        *scales_h = 0;
        const float d = -max_scale / 32;
        *dh = f2h(d);
        const float id = d ? 1 / d : 0.f;
        for (int ib = 0; ib < nb; ++ib) {
            int l = nearest_int(id * scales[ib]);
            l = std::max(-32, std::min(31, l));
            const float dl = d * float(l);
            const float idl = dl ? 1 / dl : 0.f;
            for (int j = 0; j < block_size; ++j)
                L[ib * block_size + j] =
                    uint8_t(best_index_int8(16, kValuesIq4nl, idl * x[ib * block_size + j]));
            l += 32;
            if (ib % 2 == 0)
                scales_l[ib / 2] = uint8_t(l & 0xf);
            else
                scales_l[ib / 2] |= uint8_t((l & 0xf) << 4);
            *scales_h = uint16_t(*scales_h | ((l >> 4) << (2 * (ib % 8))));
        }
    } else {
        *dh = f2h(scales[0]);
        if (ntry > 0) {
            const float id = scales[0] ? 1 / scales[0] : 0;
            for (int j = 0; j < super_block_size; ++j)
                L[j] = uint8_t(best_index_int8(16, kValuesIq4nl, id * x[j]));
        }
    }
    for (int i = 0; i < super_block_size / 32; ++i)
        for (int j = 0; j < 16; ++j)
            q4[16 * i + j] = uint8_t(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

int best_index_mxfp4(float x, float e) {
    int best_index = 0;
    float best_err = std::fabs(float(kValuesMxfp4[0]) * e - x);
    for (int i = 1; i < 16; ++i) {
        const float err = std::fabs(float(kValuesMxfp4[i]) * e - x);
        if (err < best_err) {
            best_index = i;
            best_err = err;
        }
    }
    return best_index;
}

}  // namespace

void dequantize_iq4_nl(const void* vx, float* y, int64_t n) {
    const auto* x = static_cast<const BlockIq4Nl*>(vx);
    for (int64_t i = 0; i < n / QK4_NL; ++i, y += QK4_NL) {
        const float d = h2f(x[i].d);
        for (int j = 0; j < QK4_NL / 2; ++j) {
            y[j] = d * float(kValuesIq4nl[x[i].qs[j] & 0xf]);
            y[j + QK4_NL / 2] = d * float(kValuesIq4nl[x[i].qs[j] >> 4]);
        }
    }
}

void dequantize_iq4_xs(const void* vx, float* y, int64_t n) {
    const auto* x = static_cast<const BlockIq4Xs*>(vx);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const uint8_t* qs = x[i].qs;
        const float d = h2f(x[i].d);
        for (int ib = 0; ib < QK_K / 32; ++ib, y += 32, qs += 16) {
            const int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) |
                           (((x[i].scales_h >> 2 * ib) & 3) << 4);
            const float dl = d * float(ls - 32);
            for (int j = 0; j < 16; ++j) {
                y[j] = dl * float(kValuesIq4nl[qs[j] & 0xf]);
                y[j + 16] = dl * float(kValuesIq4nl[qs[j] >> 4]);
            }
        }
    }
}

void dequantize_mxfp4(const void* vx, float* y, int64_t n) {
    const auto* x = static_cast<const BlockMxfp4*>(vx);
    for (int64_t i = 0; i < n / QK_MXFP4; ++i, y += QK_MXFP4) {
        const float d = e8m0_to_f32_half(x[i].e);
        for (int j = 0; j < QK_MXFP4 / 2; ++j) {
            y[j] = float(kValuesMxfp4[x[i].qs[j] & 0x0F]) * d;
            y[j + QK_MXFP4 / 2] = float(kValuesMxfp4[x[i].qs[j] >> 4]) * d;
        }
    }
}

void quantize_iq4_nl(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<BlockIq4Nl*>(vy);
    uint16_t unused_h = 0;
    for (int64_t i = 0; i < n / QK4_NL; ++i)
        iq4_quantize_superblock(QK4_NL, x + QK4_NL * i, &y[i].d, y[i].qs, &unused_h, nullptr, -1);
}

void quantize_iq4_xs(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<BlockIq4Xs*>(vy);
    for (int64_t i = 0; i < n / QK_K; ++i)
        iq4_quantize_superblock(QK_K, x + QK_K * i, &y[i].d, y[i].qs, &y[i].scales_h, y[i].scales_l,
                                7);
}

void quantize_mxfp4(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<BlockMxfp4*>(vy);
    for (int64_t i = 0; i < n / QK_MXFP4; ++i, x += QK_MXFP4) {
        float amax = 0.0f;
        for (int j = 0; j < QK_MXFP4; ++j) amax = std::max(amax, std::fabs(x[j]));
        // Shared exponent so that amax lands in the top binade of E2M1 (max 6 = 1.5 * 2^2).
        const float e_f = amax > 0.0f ? std::floor(std::log2(amax)) - 2 + 127 : 0.0f;
        const uint8_t e = uint8_t(std::clamp(e_f, 0.0f, 255.0f));
        const float d = e8m0_to_f32_half(e);
        y[i].e = e;
        for (int j = 0; j < QK_MXFP4 / 2; ++j) {
            const int q0 = best_index_mxfp4(x[j], d);
            const int q1 = best_index_mxfp4(x[j + QK_MXFP4 / 2], d);
            y[i].qs[j] = uint8_t(q0 | (q1 << 4));
        }
    }
}

float dot_iq4_nl_q8_0(const void* vx, const void* vy, int64_t n) {
    const auto* x = static_cast<const BlockIq4Nl*>(vx);
    const auto* y = static_cast<const BlockQ8_0*>(vy);
    float sumf = 0;
    for (int64_t ib = 0; ib < n / QK4_NL; ++ib) {
        const float d = h2f(y[ib].d) * h2f(x[ib].d);
        int s1 = 0, s2 = 0;
        for (int j = 0; j < QK4_NL / 2; ++j) {
            s1 += y[ib].qs[j] * kValuesIq4nl[x[ib].qs[j] & 0xf];
            s2 += y[ib].qs[j + QK4_NL / 2] * kValuesIq4nl[x[ib].qs[j] >> 4];
        }
        sumf += d * float(s1 + s2);
    }
    return sumf;
}

float dot_iq4_xs_q8_k(const void* vx, const void* vy, int64_t n) {
    const auto* x = static_cast<const BlockIq4Xs*>(vx);
    const auto* y = static_cast<const BlockQ8K*>(vy);
    float sumf = 0;
    for (int64_t ibl = 0; ibl < n / QK_K; ++ibl) {
        const float d4d8 = h2f(x[ibl].d) * y[ibl].d;
        const uint8_t* qs = x[ibl].qs;
        const int8_t* q8 = y[ibl].qs;
        for (int ib = 0; ib < QK_K / 32; ++ib, qs += 16, q8 += 32) {
            const int ls = ((x[ibl].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) |
                           (((x[ibl].scales_h >> 2 * ib) & 3) << 4);
            const float dl = d4d8 * float(ls - 32);
            int s1 = 0, s2 = 0;
            for (int j = 0; j < 16; ++j) {
                s1 += q8[j] * kValuesIq4nl[qs[j] & 0xf];
                s2 += q8[j + 16] * kValuesIq4nl[qs[j] >> 4];
            }
            sumf += dl * float(s1 + s2);
        }
    }
    return sumf;
}

float dot_mxfp4_q8_0(const void* vx, const void* vy, int64_t n) {
    const auto* x = static_cast<const BlockMxfp4*>(vx);
    const auto* y = static_cast<const BlockQ8_0*>(vy);
    float sumf = 0;
    for (int64_t ib = 0; ib < n / QK_MXFP4; ++ib) {
        const float d = h2f(y[ib].d) * e8m0_to_f32_half(x[ib].e);
        int s1 = 0, s2 = 0;
        for (int j = 0; j < QK_MXFP4 / 2; ++j) {
            s1 += y[ib].qs[j] * kValuesMxfp4[x[ib].qs[j] & 0xf];
            s2 += y[ib].qs[j + QK_MXFP4 / 2] * kValuesMxfp4[x[ib].qs[j] >> 4];
        }
        sumf += d * float(s1 + s2);
    }
    return sumf;
}

}  // namespace moe::quants
