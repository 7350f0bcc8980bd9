// Scalar reference kernels over the packed layouts: the same arithmetic as the SIMD variants
// (same prepared activations, exact integer dot products for INT8/INT4), written as plain
// loops so that a SIMD result can be compared with it to float-summation accuracy.
#include "core/dtype.h"
#include "cpu/moe/kernels_impl.h"

namespace moe::kern {
namespace {

void bf16_scalar(const PackedMatrix& w, const PackedActs& a, int64_t b0, int64_t b1, float* y,
                 int64_t ldy) {
    for (int64_t b = b0; b < b1; ++b) {
        const auto* wb = reinterpret_cast<const uint16_t*>(w.block(b));
        for (int64_t t = 0; t < a.T; ++t) {
            const float* x = a.f32.data() + t * a.kp;
            for (int64_t j = 0; j < kRowBlock; ++j) {
                float acc = 0.0f;
                for (int64_t k = 0; k < w.cols; ++k)
                    acc += bf16_to_f32(wb[bf16_index(k, j)]) * x[k];
                y[t * ldy + b * kRowBlock + j] = acc;
            }
        }
    }
}

void int8_scalar(const PackedMatrix& w, const PackedActs& a, int64_t b0, int64_t b1, float* y,
                 int64_t ldy) {
    for (int64_t b = b0; b < b1; ++b) {
        const auto* wb = reinterpret_cast<const int8_t*>(w.block(b));
        for (int64_t t = 0; t < a.T; ++t) {
            const int8_t* x = a.i8.data() + t * a.kp;
            for (int64_t j = 0; j < kRowBlock; ++j) {
                int32_t acc = 0;
                for (int64_t k = 0; k < w.cols; ++k) acc += int32_t(wb[int8_index(k, j)]) * x[k];
                y[t * ldy + b * kRowBlock + j] =
                    float(acc) * (w.scale[size_t(b * kRowBlock + j)] * a.scale[size_t(t)]);
            }
        }
    }
}

// Row j's 4-bit values over k in [k0, k1) times int8 activations: the integer part of an
// INT4 group or a Q4K sub-block (the SIMD kernels' nibble_dot, one product at a time).
int32_t nibble_dot(const uint8_t* block, const int8_t* x, int64_t j, int64_t k0, int64_t k1) {
    int32_t sum = 0;
    for (int64_t k = k0; k < k1; ++k) sum += int4_value(block, k, j) * x[k];
    return sum;
}

void int4_scalar(const PackedMatrix& w, const PackedActs& a, int64_t b0, int64_t b1, float* y,
                 int64_t ldy) {
    const int64_t G = w.group, ng = w.groups();
    for (int64_t b = b0; b < b1; ++b) {
        const uint8_t* wb = w.block(b);
        for (int64_t t = 0; t < a.T; ++t) {
            const int8_t* x = a.i8.data() + t * a.kp;
            for (int64_t j = 0; j < kRowBlock; ++j) {
                float acc = 0.0f;
                for (int64_t g = 0; g < ng; ++g) {
                    const int32_t isum = nibble_dot(wb, x, j, g * G, (g + 1) * G);
                    const size_t s = size_t((b * ng + g) * kRowBlock + j);
                    acc += float(isum) * w.gscale[s];
                    acc += w.gmin[s] * a.gsum[size_t(t * ng + g)];
                }
                y[t * ldy + b * kRowBlock + j] = acc * a.scale[size_t(t)];
            }
        }
    }
}

}  // namespace

// Per row and super-block: d * xs * sum_g sc_g * isum_g - dmin * xs * sum_g m_g * gsum_g, with
// the integer parts exact (the AVX-512 kernel computes the same integers).
void q4k_scalar(const PackedMatrix& w, const PackedActs& a, int64_t b0, int64_t b1, float* y,
                int64_t ldy) {
    const int64_t ng = w.groups(), nsb = w.kp / 256;
    for (int64_t b = b0; b < b1; ++b) {
        const uint8_t* wb = w.block(b);
        for (int64_t t = 0; t < a.T; ++t) {
            const int8_t* x = a.i8.data() + t * a.kp;
            for (int64_t j = 0; j < kRowBlock; ++j) {
                float acc = 0.0f;
                for (int64_t sb = 0; sb < nsb; ++sb) {
                    int32_t s1 = 0, s2 = 0;
                    for (int64_t g = sb * 8; g < sb * 8 + 8; ++g) {
                        const int32_t isum = nibble_dot(wb, x, j, g * 32, g * 32 + 32);
                        const size_t gi = size_t((b * ng + g) * kRowBlock + j);
                        s1 += int32_t(w.ksc[gi]) * isum;
                        s2 += int32_t(w.kmin[gi]) * int32_t(a.gsum[size_t(t * ng + g)]);
                    }
                    const size_t si = size_t((b * nsb + sb) * kRowBlock + j);
                    const float xs = a.scale[size_t(t * nsb + sb)];
                    acc += (w.kd[si] * float(s1) - w.kdmin[si] * float(s2)) * xs;
                }
                y[t * ldy + b * kRowBlock + j] = acc;
            }
        }
    }
}

const KernelTable& scalar_kernels() {
    static const KernelTable t{&bf16_scalar, &int8_scalar, &int4_scalar, &q4k_scalar};
    return t;
}

}  // namespace moe::kern
