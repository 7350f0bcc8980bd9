// The K-quants (Q2_K..Q6_K, 256-element super-blocks of 16- or 32-element sub-blocks with
// quantized scales) and Q8_K, their activation type: ggml's dequantizers, its *_ref quantizers
// (the scale searches make_qx/q3/qkx2_quants included, since their choices decide the bytes)
// and its scalar vec_dot kernels, with ggml's float operation order.
#include <algorithm>

#include "cpu/quants_blocks.h"

namespace moe::quants {

namespace {

constexpr float kGroupMaxEps = 1e-15f;

// Symmetric scale search (Q6_K uses rmse_type 1 without importance weights).
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, int rmse_type) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = std::fabs(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < kGroupMaxEps) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = float(-nmax) / max;
    if (rmse_type == 0) {
        for (int i = 0; i < n; ++i) {
            const int l = nearest_int(iscale * x[i]);
            L[i] = int8_t(nmax + std::max(-nmax, std::min(nmax - 1, l)));
        }
        return 1 / iscale;
    }
    auto weight = [rmse_type](float v) -> float {
        return rmse_type == 1   ? v * v
               : rmse_type == 2 ? 1
               : rmse_type == 3 ? std::fabs(v)
                                : std::sqrt(std::fabs(v));
    };
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * x[i]);
        l = std::max(-nmax, std::min(nmax - 1, l));
        L[i] = int8_t(l + nmax);
        const float w = weight(x[i]);
        sumlx += w * x[i] * float(l);
        suml2 += w * float(l) * float(l);
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(float(nmax) + 0.1f * float(is)) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * x[i]);
            l = std::max(-nmax, std::min(nmax - 1, l));
            const float w = weight(x[i]);
            sumlx += w * x[i] * float(l);
            suml2 += w * float(l) * float(l);
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) {
                const int l = nearest_int(iscale * x[i]);
                L[i] = int8_t(nmax + std::max(-nmax, std::min(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// Q3_K's search: start from the max-based scale, then greedily move single quants while the
// weighted least-squares error drops (at most 5 sweeps).
float make_q3_quants(int n, int nmax, const float* x, int8_t* L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = std::fabs(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < kGroupMaxEps) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    const float iscale = float(-nmax) / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * x[i]);
        l = std::max(-nmax, std::min(nmax - 1, l));
        L[i] = int8_t(l);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * float(l);
        suml2 += w * float(l) * float(l);
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * float(L[i]);
            if (slx > 0) {
                float sl2 = suml2 - w * float(L[i]) * float(L[i]);
                int new_l = nearest_int(x[i] * sl2 / slx);
                new_l = std::max(-nmax, std::min(nmax - 1, new_l));
                if (new_l != L[i]) {
                    slx += w * x[i] * float(new_l);
                    sl2 += w * float(new_l) * float(new_l);
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = int8_t(new_l);
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; ++i) L[i] = int8_t(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// Asymmetric (scale, min) search over nstep+1 candidate scales, weighted least squares.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                       bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = float(nmax) / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = uint8_t(std::max(0, std::min(nmax, l)));
        float diff = scale * float(L[i]) + min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * float(is) + float(nmax)) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * (x[i] - min));
            l = std::max(0, std::min(nmax, l));
            Laux[i] = uint8_t(l);
            const float w = weights[i];
            sum_l += w * float(l);
            sum_l2 += w * float(l) * float(l);
            sum_xl += w * float(l) * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * float(Laux[i]) + this_min - x[i];
                diff = use_mad ? std::fabs(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; ++i) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

// Q3_K's 16 six-bit scales (still offset by 32).
inline int q3k_scale(const uint8_t* s, int j) {
    const int lo = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
    const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return lo | (hi << 4);
}

// Shared by Q4_K and Q5_K: quantize sub-block scales/mins to 6 bits in ggml's packing.
void pack_scale_min_k4(const float* scales, const float* mins, uint8_t* out, uint16_t* d,
                       uint16_t* dmin) {
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 32; ++j) {
        max_scale = std::max(max_scale, scales[j]);
        max_min = std::max(max_min, mins[j]);
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK_K / 32; ++j) {
        const uint8_t ls = std::min<uint8_t>(63, uint8_t(nearest_int(inv_scale * scales[j])));
        const uint8_t lm = std::min<uint8_t>(63, uint8_t(nearest_int(inv_min * mins[j])));
        if (j < 4) {
            out[j] = ls;
            out[j + 4] = lm;
        } else {
            out[j + 4] = uint8_t((ls & 0xF) | ((lm & 0xF) << 4));
            out[j - 4] |= uint8_t((ls >> 4) << 6);
            out[j - 0] |= uint8_t((lm >> 4) << 6);
        }
    }
    *d = f2h(max_scale / 63.f);
    *dmin = f2h(max_min / 63.f);
}

// Q4_K/Q5_K: per 32-element sub-block, the (scale, min) search with ggml's weights, then the
// final quants against the rounded 6-bit scales.
void quantize_k4_levels(const float* x, int nmax, float rmin, int nstep, uint8_t* L,
                        uint8_t* scales_out, uint16_t* d, uint16_t* dmin) {
    float mins[QK_K / 32], scales[QK_K / 32], weights[32];
    uint8_t Laux[32];
    for (int j = 0; j < QK_K / 32; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = std::sqrt(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                     rmin, 0.1f, nstep, false);
    }
    pack_scale_min_k4(scales, mins, scales_out, d, dmin);
    for (int j = 0; j < QK_K / 32; ++j) {
        uint8_t sc, m;
        get_scale_min_k4(j, scales_out, &sc, &m);
        const float dd = h2f(*d) * float(sc);
        if (!dd) continue;
        const float dm = h2f(*dmin) * float(m);
        for (int ii = 0; ii < 32; ++ii) {
            const int l = nearest_int((x[32 * j + ii] + dm) / dd);
            L[32 * j + ii] = uint8_t(std::max(0, std::min(nmax, l)));
        }
    }
}

}  // namespace

// ---------------------------------------------------------------- dequantize

void dequantize_q2_k(const void* vx, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ2K*>(vx);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = h2f(x[i].d), min = h2f(x[i].dmin);
        const uint8_t* q = x[i].qs;
        int is = 0;
        for (int half = 0; half < QK_K; half += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; ++part) {
                    const uint8_t sc = x[i].scales[is++];
                    const float dl = d * float(sc & 0xF), ml = min * float(sc >> 4);
                    for (int l = 0; l < 16; ++l)
                        *y++ = dl * float((q[l + 16 * part] >> shift) & 3) - ml;
                }
            }
        }
    }
}

void dequantize_q3_k(const void* vx, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ3K*>(vx);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d_all = h2f(x[i].d);
        const uint8_t* q = x[i].qs;
        const uint8_t* hm = x[i].hmask;
        uint8_t m = 1;
        int is = 0;
        for (int half = 0; half < QK_K; half += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m = uint8_t(m << 1)) {
                for (int part = 0; part < 2; ++part) {
                    const float dl = d_all * float(q3k_scale(x[i].scales, is++) - 32);
                    for (int l = 16 * part; l < 16 * part + 16; ++l)
                        *y++ = dl * float(((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                }
            }
        }
    }
}

void dequantize_q4_k(const void* vx, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ4K*>(vx);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = h2f(x[i].d), min = h2f(x[i].dmin);
        const uint8_t* q = x[i].qs;
        for (int is = 0; is < QK_K / 32; is += 2, q += 32) {
            uint8_t sc, m;
            get_scale_min_k4(is, x[i].scales, &sc, &m);
            const float d1 = d * float(sc), m1 = min * float(m);
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * float(sc), m2 = min * float(m);
            for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
        }
    }
}

void dequantize_q5_k(const void* vx, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ5K*>(vx);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = h2f(x[i].d), min = h2f(x[i].dmin);
        const uint8_t* ql = x[i].qs;
        const uint8_t* qh = x[i].qh;
        uint8_t u1 = 1, u2 = 2;
        for (int is = 0; is < QK_K / 32; is += 2, ql += 32) {
            uint8_t sc, m;
            get_scale_min_k4(is, x[i].scales, &sc, &m);
            const float d1 = d * float(sc), m1 = min * float(m);
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * float(sc), m2 = min * float(m);
            for (int l = 0; l < 32; ++l)
                *y++ = d1 * float((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l)
                *y++ = d2 * float((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            u1 = uint8_t(u1 << 2);
            u2 = uint8_t(u2 << 2);
        }
    }
}

void dequantize_q6_k(const void* vx, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ6K*>(vx);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = h2f(x[i].d);
        const uint8_t* ql = x[i].ql;
        const uint8_t* qh = x[i].qh;
        const int8_t* sc = x[i].scales;
        for (int half = 0; half < QK_K; half += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * float(sc[is + 0]) * float(q1);
                y[l + 32] = d * float(sc[is + 2]) * float(q2);
                y[l + 64] = d * float(sc[is + 4]) * float(q3);
                y[l + 96] = d * float(sc[is + 6]) * float(q4);
            }
        }
    }
}

void dequantize_q8_k(const void* vx, float* y, int64_t n) {
    const auto* x = static_cast<const BlockQ8K*>(vx);
    for (int64_t i = 0; i < n / QK_K; ++i)
        for (int j = 0; j < QK_K; ++j) *y++ = x[i].d * float(x[i].qs[j]);
}

// ---------------------------------------------------------------- quantize

void quantize_q2_k(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<BlockQ2K*>(vy);
    uint8_t L[QK_K], Laux[16];
    float weights[16], mins[QK_K / 16], scales[QK_K / 16];
    const float q4scale = 15.f;
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux,
                                         -0.5f, 0.1f, 15, true);
            max_scale = std::max(max_scale, scales[j]);
            max_min = std::max(max_min, mins[j]);
        }
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < QK_K / 16; ++j)
                y[i].scales[j] = uint8_t(nearest_int(iscale * scales[j]));
            y[i].d = f2h(max_scale / q4scale);
        } else {
            for (int j = 0; j < QK_K / 16; ++j) y[i].scales[j] = 0;
            y[i].d = f2h(0.f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < QK_K / 16; ++j)
                y[i].scales[j] |= uint8_t(nearest_int(iscale * mins[j]) << 4);
            y[i].dmin = f2h(max_min / q4scale);
        } else {
            y[i].dmin = f2h(0.f);
        }
        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = h2f(y[i].d) * float(y[i].scales[j] & 0xF);
            if (!d) continue;
            const float dm = h2f(y[i].dmin) * float(y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ++ii) {
                const int l = nearest_int((x[16 * j + ii] + dm) / d);
                L[16 * j + ii] = uint8_t(std::max(0, std::min(3, l)));
            }
        }
        for (int j = 0; j < QK_K; j += 128)
            for (int l = 0; l < 32; ++l)
                y[i].qs[j / 4 + l] = uint8_t(L[j + l] | (L[j + l + 32] << 2) |
                                             (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
}

void quantize_q3_k(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<BlockQ3K*>(vy);
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            const float scale = std::fabs(scales[j]);
            if (scale > amax) {
                amax = scale;
                max_scale = scales[j];
            }
        }
        std::memset(y[i].scales, 0, 12);
        if (max_scale) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < QK_K / 16; ++j) {
                int8_t l = int8_t(nearest_int(iscale * scales[j]));
                l = int8_t(std::max<int>(-32, std::min<int>(31, l)) + 32);
                if (j < 8)
                    y[i].scales[j] = uint8_t(l & 0xF);
                else
                    y[i].scales[j - 8] |= uint8_t((l & 0xF) << 4);
                l = int8_t(l >> 4);
                y[i].scales[j % 4 + 8] |= uint8_t(l << (2 * (j / 4)));
            }
            y[i].d = f2h(1 / iscale);
        } else {
            y[i].d = f2h(0.f);
        }
        for (int j = 0; j < QK_K / 16; ++j) {
            const int8_t sc = int8_t(q3k_scale(y[i].scales, j) - 32);
            const float d = h2f(y[i].d) * float(sc);
            if (!d) continue;
            for (int ii = 0; ii < 16; ++ii) {
                const int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = int8_t(std::max(-4, std::min(3, l)) + 4);
            }
        }
        std::memset(y[i].hmask, 0, QK_K / 8);
        // High bit of quant j goes to hmask[j % 32], bit j / 32.
        int m = 0;
        uint8_t hm = 1;
        for (int j = 0; j < QK_K; ++j) {
            if (L[j] > 3) {
                y[i].hmask[m] |= hm;
                L[j] = int8_t(L[j] - 4);
            }
            if (++m == QK_K / 8) {
                m = 0;
                hm = uint8_t(hm << 1);
            }
        }
        for (int j = 0; j < QK_K; j += 128)
            for (int l = 0; l < 32; ++l)
                y[i].qs[j / 4 + l] = uint8_t(L[j + l] | (L[j + l + 32] << 2) |
                                             (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
}

void quantize_q4_k(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<BlockQ4K*>(vy);
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        std::memset(y[i].scales, 0, K_SCALE_SIZE);
        quantize_k4_levels(x, 15, -1.f, 20, L, y[i].scales, &y[i].d, &y[i].dmin);
        uint8_t* q = y[i].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; ++l) q[l] = uint8_t(L[j + l] | (L[j + l + 32] << 4));
    }
}

void quantize_q5_k(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<BlockQ5K*>(vy);
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        std::memset(y[i].scales, 0, K_SCALE_SIZE);
        quantize_k4_levels(x, 31, -0.5f, 15, L, y[i].scales, &y[i].d, &y[i].dmin);
        uint8_t* qh = y[i].qh;
        uint8_t* ql = y[i].qs;
        std::memset(qh, 0, QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int nn = 0; nn < QK_K; nn += 64, ql += 32) {
            for (int j = 0; j < 32; ++j) {
                int l1 = L[nn + j], l2 = L[nn + j + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[j] = uint8_t(l1 | (l2 << 4));
            }
            m1 = uint8_t(m1 << 2);
            m2 = uint8_t(m2 << 2);
        }
    }
}

void quantize_q6_k(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<BlockQ6K*>(vy);
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ++ib) {
            scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1);
            const float abs_scale = std::fabs(scales[ib]);
            if (abs_scale > max_abs_scale) {
                max_abs_scale = abs_scale;
                max_scale = scales[ib];
            }
        }
        if (max_abs_scale < kGroupMaxEps) {
            std::memset(&y[i], 0, sizeof(BlockQ6K));
            continue;
        }
        const float iscale = -128.f / max_scale;
        y[i].d = f2h(1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ++ib)
            y[i].scales[ib] = int8_t(std::min(127, nearest_int(iscale * scales[ib])));
        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = h2f(y[i].d) * float(y[i].scales[j]);
            if (!d) continue;
            for (int ii = 0; ii < 16; ++ii) {
                const int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = int8_t(std::max(-32, std::min(31, l)) + 32);
            }
        }
        uint8_t* ql = y[i].ql;
        uint8_t* qh = y[i].qh;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; ++l) {
                const int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
                const int q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l] = uint8_t(q1 | (q3 << 4));
                ql[l + 32] = uint8_t(q2 | (q4 << 4));
                qh[l] = uint8_t((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
        }
    }
}

void quantize_q8_k(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<BlockQ8K*>(vy);
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; ++j) {
            const float ax = std::fabs(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (!amax) {
            std::memset(&y[i], 0, sizeof(BlockQ8K));
            continue;
        }
        // -127 (not -128) keeps every quant in [-127, 127], as ggml does for its SIMD dots.
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; ++j)
            y[i].qs[j] = int8_t(std::min(127, nearest_int(iscale * x[j])));
        for (int j = 0; j < QK_K / 16; ++j) {
            int sum = 0;
            for (int ii = 0; ii < 16; ++ii) sum += y[i].qs[j * 16 + ii];
            y[i].bsums[j] = int16_t(sum);
        }
        y[i].d = 1 / iscale;
    }
}

// ---------------------------------------------------------------- dot products
//
// ggml's scalar K-quant dots keep eight int32 lane sums per super-block (lane = index % 8),
// scale them by d into eight float accumulators that run over the whole row, and add those
// last; the mins are subtracted from a separate running sum. Kept as is for bit-exactness.

namespace {

inline float finish_lanes(float sumf, const float* sums) {
    for (int l = 0; l < 8; ++l) sumf += sums[l];
    return sumf;
}

// aux32[l] += sum over sub-blocks of scale(sub-block) * sum_{k%8==l} a[k] * q8[k].
inline void add_lanes(const int8_t* a, const int8_t* q8, int sub, int n_sub, const int* scale,
                      int32_t* aux32) {
    for (int j = 0; j < n_sub; ++j)
        for (int k = 0; k < sub; ++k) aux32[k % 8] += scale[j] * (q8[j * sub + k] * a[j * sub + k]);
}

}  // namespace

float dot_q2_k_q8_k(const void* vx, const void* vy, int64_t n) {
    const auto* x = static_cast<const BlockQ2K*>(vx);
    const auto* y = static_cast<const BlockQ8K*>(vy);
    float sumf = 0;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const uint8_t* q2 = x[i].qs;
        const int8_t* q8 = y[i].qs;
        const uint8_t* sc = x[i].scales;
        int summs = 0;
        for (int j = 0; j < 16; ++j) summs += y[i].bsums[j] * (sc[j] >> 4);
        const float dall = y[i].d * h2f(x[i].d);
        const float dmin = y[i].d * h2f(x[i].dmin);
        int isum = 0, is = 0;
        for (int k = 0; k < QK_K / 128; ++k, q2 += 32) {
            for (int shift = 0; shift < 8; shift += 2, q8 += 32) {
                int d = sc[is++] & 0xF, isuml = 0;
                for (int l = 0; l < 16; ++l) isuml += q8[l] * ((q2[l] >> shift) & 3);
                isum += d * isuml;
                d = sc[is++] & 0xF;
                isuml = 0;
                for (int l = 16; l < 32; ++l) isuml += q8[l] * ((q2[l] >> shift) & 3);
                isum += d * isuml;
            }
        }
        sumf += dall * float(isum) - dmin * float(summs);
    }
    return sumf;
}

float dot_q3_k_q8_k(const void* vx, const void* vy, int64_t n) {
    const auto* x = static_cast<const BlockQ3K*>(vx);
    const auto* y = static_cast<const BlockQ8K*>(vy);
    float sums[8] = {};
    int8_t a[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const uint8_t* q3 = x[i].qs;
        const uint8_t* hm = x[i].hmask;
        int8_t* pa = a;
        uint8_t m = 1;
        for (int j = 0; j < QK_K; j += 128, q3 += 32)
            for (int shift = 0; shift < 8; shift += 2, pa += 32, m = uint8_t(m << 1))
                for (int l = 0; l < 32; ++l)
                    pa[l] = int8_t(((q3[l] >> shift) & 3) - (hm[l] & m ? 0 : 4));
        int scale[16];
        for (int j = 0; j < 16; ++j) scale[j] = q3k_scale(x[i].scales, j) - 32;
        int32_t aux32[8] = {};
        add_lanes(a, y[i].qs, 16, 16, scale, aux32);
        const float d = h2f(x[i].d) * y[i].d;
        for (int l = 0; l < 8; ++l) sums[l] += d * float(aux32[l]);
    }
    return finish_lanes(0.0f, sums);
}

namespace {

// Q4_K and Q5_K share everything but how the 4/5-bit quants are unpacked into `a`.
template <typename Block, typename Unpack>
float dot_k4_q8_k(const Block* x, const BlockQ8K* y, int64_t n, Unpack unpack) {
    float sums[8] = {};
    float sumf = 0;
    int8_t a[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i) {
        unpack(x[i], a);
        int scale[8];
        int sumi = 0;
        for (int j = 0; j < 8; ++j) {
            uint8_t sc, m;
            get_scale_min_k4(j, x[i].scales, &sc, &m);
            scale[j] = sc;
            sumi += (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]) * m;
        }
        int32_t aux32[8] = {};
        add_lanes(a, y[i].qs, 32, 8, scale, aux32);
        const float d = h2f(x[i].d) * y[i].d;
        for (int l = 0; l < 8; ++l) sums[l] += d * float(aux32[l]);
        const float dmin = h2f(x[i].dmin) * y[i].d;
        sumf -= dmin * float(sumi);
    }
    return finish_lanes(sumf, sums);
}

}  // namespace

float dot_q4_k_q8_k(const void* vx, const void* vy, int64_t n) {
    return dot_k4_q8_k(static_cast<const BlockQ4K*>(vx), static_cast<const BlockQ8K*>(vy), n,
                       [](const BlockQ4K& b, int8_t* a) {
                           const uint8_t* q = b.qs;
                           for (int j = 0; j < QK_K / 64; ++j, q += 32, a += 64)
                               for (int l = 0; l < 32; ++l) {
                                   a[l] = int8_t(q[l] & 0xF);
                                   a[l + 32] = int8_t(q[l] >> 4);
                               }
                       });
}

float dot_q5_k_q8_k(const void* vx, const void* vy, int64_t n) {
    return dot_k4_q8_k(static_cast<const BlockQ5K*>(vx), static_cast<const BlockQ8K*>(vy), n,
                       [](const BlockQ5K& b, int8_t* a) {
                           const uint8_t* q = b.qs;
                           uint8_t m = 1;
                           for (int j = 0; j < QK_K / 64; ++j, q += 32, a += 64) {
                               for (int l = 0; l < 32; ++l)
                                   a[l] = int8_t((q[l] & 0xF) + (b.qh[l] & m ? 16 : 0));
                               m = uint8_t(m << 1);
                               for (int l = 0; l < 32; ++l)
                                   a[l + 32] = int8_t((q[l] >> 4) + (b.qh[l] & m ? 16 : 0));
                               m = uint8_t(m << 1);
                           }
                       });
}

float dot_q6_k_q8_k(const void* vx, const void* vy, int64_t n) {
    const auto* x = static_cast<const BlockQ6K*>(vx);
    const auto* y = static_cast<const BlockQ8K*>(vy);
    float sums[8] = {};
    int8_t a[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const uint8_t* ql = x[i].ql;
        const uint8_t* qh = x[i].qh;
        int8_t* pa = a;
        for (int j = 0; j < QK_K; j += 128, pa += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; ++l) {
                pa[l + 0] = int8_t(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                pa[l + 32] = int8_t(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                pa[l + 64] = int8_t(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                pa[l + 96] = int8_t(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        int scale[16];
        for (int j = 0; j < 16; ++j) scale[j] = x[i].scales[j];
        int32_t aux32[8] = {};
        add_lanes(a, y[i].qs, 16, 16, scale, aux32);
        const float d = h2f(x[i].d) * y[i].d;
        for (int l = 0; l < 8; ++l) sums[l] += d * float(aux32[l]);
    }
    return finish_lanes(0.0f, sums);
}

}  // namespace moe::quants
