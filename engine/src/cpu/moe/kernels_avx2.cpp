// AVX2 + FMA kernels (no VNNI): a 64-byte weight line is two ymm halves (rows 0-7, 8-15).
// BF16 widens the weights to fp32 with shifts; INT8 uses vpmaddubsw with the sign trick
// (|w| as the unsigned operand, x carrying w's sign) whose pair sums stay below 2 * 127 * 127 and
// never saturate; INT4 nibbles (0..15) go straight in as the unsigned operand.
//
// As in kernels_avx512.cpp, code under the target pragma keeps internal linkage.
#include <immintrin.h>

#include <algorithm>

#include "cpu/moe/kernels_impl.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
// clang ignores GCC target pragmas; its own form gives the region the same ISA.
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#endif

namespace moe::kern {
namespace {

constexpr int kTok = 4;

inline __m256i bcast32(const uint32_t* p) {
    return _mm256_set1_epi32(int(*p));
}

template <int NT>
void bf16_block(const uint8_t* wb, const float* x, int64_t ldx, int64_t pairs, float* y,
                int64_t ldy) {
    const __m256i himask = _mm256_set1_epi32(int(0xFFFF0000u));
    __m256 acc[2][NT];
    for (int t = 0; t < NT; ++t) acc[0][t] = acc[1][t] = _mm256_setzero_ps();
    for (int64_t p = 0; p < pairs; ++p) {
        for (int h = 0; h < 2; ++h) {
            const __m256i v =
                _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + p * 64 + h * 32));
            const __m256 even = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
            const __m256 odd = _mm256_castsi256_ps(_mm256_and_si256(v, himask));
            for (int t = 0; t < NT; ++t) {
                acc[h][t] =
                    _mm256_fmadd_ps(even, _mm256_broadcast_ss(x + t * ldx + 2 * p), acc[h][t]);
                acc[h][t] =
                    _mm256_fmadd_ps(odd, _mm256_broadcast_ss(x + t * ldx + 2 * p + 1), acc[h][t]);
            }
        }
    }
    for (int t = 0; t < NT; ++t) {
        _mm256_storeu_ps(y + t * ldy, acc[0][t]);
        _mm256_storeu_ps(y + t * ldy + 8, acc[1][t]);
    }
}

template <int NT>
void int8_block(const uint8_t* wb, const uint32_t* xi, int64_t ldx, int64_t quads,
                const float* wscale, const float* xs, float* y, int64_t ldy) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[2][NT];
    for (int t = 0; t < NT; ++t) acc[0][t] = acc[1][t] = _mm256_setzero_si256();
    for (int64_t q = 0; q < quads; ++q) {
        for (int h = 0; h < 2; ++h) {
            const __m256i v =
                _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + q * 64 + h * 32));
            const __m256i av = _mm256_abs_epi8(v);
            for (int t = 0; t < NT; ++t) {
                const __m256i sx = _mm256_sign_epi8(bcast32(xi + t * ldx + q), v);
                const __m256i p16 = _mm256_maddubs_epi16(av, sx);
                acc[h][t] = _mm256_add_epi32(acc[h][t], _mm256_madd_epi16(p16, ones));
            }
        }
    }
    for (int t = 0; t < NT; ++t) {
        for (int h = 0; h < 2; ++h) {
            const __m256 s = _mm256_mul_ps(_mm256_loadu_ps(wscale + 8 * h), _mm256_set1_ps(xs[t]));
            _mm256_storeu_ps(y + t * ldy + 8 * h, _mm256_mul_ps(_mm256_cvtepi32_ps(acc[h][t]), s));
        }
    }
}

// The nibble layout shared by INT4 and Q4K: ia[h][t] = the integer dot products of rows
// 8h..8h+7's 4-bit values over lines [o0, o1) with token t's int8 activations. The nibbles
// (0..15) go straight in as vpmaddubsw's unsigned operand.
template <int NT>
inline void nibble_dot(const uint8_t* wb, const uint32_t* xi, int64_t ldx, int64_t o0, int64_t o1,
                       __m256i (*ia)[NT]) {
    const __m256i mask = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    for (int t = 0; t < NT; ++t) ia[0][t] = ia[1][t] = _mm256_setzero_si256();
    for (int64_t o = o0; o < o1; ++o) {
        for (int h = 0; h < 2; ++h) {
            const __m256i v =
                _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + o * 64 + h * 32));
            const __m256i lo = _mm256_and_si256(v, mask);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
            for (int t = 0; t < NT; ++t) {
                // Each pair sum is at most 2 * 15 * 127, so two of them fit int16.
                const __m256i p16 =
                    _mm256_add_epi16(_mm256_maddubs_epi16(lo, bcast32(xi + t * ldx + 2 * o)),
                                     _mm256_maddubs_epi16(hi, bcast32(xi + t * ldx + 2 * o + 1)));
                ia[h][t] = _mm256_add_epi32(ia[h][t], _mm256_madd_epi16(p16, ones));
            }
        }
    }
}

template <int NT>
void int4_block(const uint8_t* wb, const uint32_t* xi, int64_t ldx, int64_t ng, int64_t og,
                const float* gs, const float* gm, const float* gsum, const float* xs, float* y,
                int64_t ldy) {
    __m256 acc[2][NT];
    for (int t = 0; t < NT; ++t) acc[0][t] = acc[1][t] = _mm256_setzero_ps();
    for (int64_t g = 0; g < ng; ++g) {
        __m256i ia[2][NT];
        nibble_dot<NT>(wb, xi, ldx, g * og, (g + 1) * og, ia);
        for (int h = 0; h < 2; ++h) {
            const __m256 d = _mm256_loadu_ps(gs + g * kRowBlock + 8 * h);
            const __m256 m = _mm256_loadu_ps(gm + g * kRowBlock + 8 * h);
            for (int t = 0; t < NT; ++t) {
                acc[h][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[h][t]), d, acc[h][t]);
                acc[h][t] = _mm256_fmadd_ps(m, _mm256_set1_ps(gsum[t * ng + g]), acc[h][t]);
            }
        }
    }
    for (int t = 0; t < NT; ++t) {
        for (int h = 0; h < 2; ++h)
            _mm256_storeu_ps(y + t * ldy + 8 * h, _mm256_mul_ps(acc[h][t], _mm256_set1_ps(xs[t])));
    }
}

// Q4K (GGUF Q4_K repacked): the INT4 loop per 32-element sub-block; the six-bit scale and min
// and the super-block's d / dmin are folded into fp32 multipliers per sub-block and token
// (AVX2 has 16 registers: two tokens per weight pass keep the accumulators in registers).
template <int NT>
void q4k_block(const uint8_t* wb, const uint32_t* xi, int64_t ldx, int64_t nsb, const uint8_t* sc,
               const uint8_t* mn, const float* kd, const float* kdm, const float* gsum, int64_t ldg,
               const float* xs, int64_t ldxs, float* y, int64_t ldy) {
    __m256 acc[2][NT];
    for (int t = 0; t < NT; ++t) acc[0][t] = acc[1][t] = _mm256_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
        for (int64_t g = sb * 8; g < sb * 8 + 8; ++g) {
            __m256i ia[2][NT];
            nibble_dot<NT>(wb, xi, ldx, g * 4, g * 4 + 4, ia);
            for (int h = 0; h < 2; ++h) {
                const __m256 scf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(
                    _mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc + g * kRowBlock + 8 * h))));
                const __m256 mnf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(
                    _mm_loadl_epi64(reinterpret_cast<const __m128i*>(mn + g * kRowBlock + 8 * h))));
                const __m256 dsc = _mm256_mul_ps(_mm256_loadu_ps(kd + sb * kRowBlock + 8 * h), scf);
                const __m256 dmn =
                    _mm256_mul_ps(_mm256_loadu_ps(kdm + sb * kRowBlock + 8 * h), mnf);
                for (int t = 0; t < NT; ++t) {
                    const float x = xs[t * ldxs + sb];
                    acc[h][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[h][t]),
                                                _mm256_mul_ps(dsc, _mm256_set1_ps(x)), acc[h][t]);
                    acc[h][t] =
                        _mm256_fnmadd_ps(dmn, _mm256_set1_ps(gsum[t * ldg + g] * x), acc[h][t]);
                }
            }
        }
    }
    for (int t = 0; t < NT; ++t) {
        for (int h = 0; h < 2; ++h) _mm256_storeu_ps(y + t * ldy + 8 * h, acc[h][t]);
    }
}

template <typename F>
void over_tokens(int64_t T, F&& f) {
    for (int64_t t0 = 0; t0 < T; t0 += kTok) {
        switch (std::min<int64_t>(kTok, T - t0)) {
            case 1:
                f.template operator()<1>(t0);
                break;
            case 2:
                f.template operator()<2>(t0);
                break;
            case 3:
                f.template operator()<3>(t0);
                break;
            default:
                f.template operator()<4>(t0);
                break;
        }
    }
}

void bf16_avx2(const PackedMatrix& w, const PackedActs& a, int64_t b0, int64_t b1, float* y,
               int64_t ldy) {
    for (int64_t b = b0; b < b1; ++b) {
        over_tokens(a.T, [&]<int NT>(int64_t t0) {
            bf16_block<NT>(w.block(b), a.f32.data() + t0 * w.kp, w.kp, w.kp / 2,
                           y + t0 * ldy + b * kRowBlock, ldy);
        });
    }
}

void int8_avx2(const PackedMatrix& w, const PackedActs& a, int64_t b0, int64_t b1, float* y,
               int64_t ldy) {
    const int64_t ldx = w.kp / 4;
    const auto* x = reinterpret_cast<const uint32_t*>(a.i8.data());
    for (int64_t b = b0; b < b1; ++b) {
        over_tokens(a.T, [&]<int NT>(int64_t t0) {
            int8_block<NT>(w.block(b), x + t0 * ldx, ldx, ldx, w.scale.data() + b * kRowBlock,
                           a.scale.data() + t0, y + t0 * ldy + b * kRowBlock, ldy);
        });
    }
}

void int4_avx2(const PackedMatrix& w, const PackedActs& a, int64_t b0, int64_t b1, float* y,
               int64_t ldy) {
    const int64_t ldx = w.kp / 4, ng = w.groups(), og = w.group / 8;
    const auto* x = reinterpret_cast<const uint32_t*>(a.i8.data());
    for (int64_t b = b0; b < b1; ++b) {
        const size_t s = size_t(b * ng * kRowBlock);
        over_tokens(a.T, [&]<int NT>(int64_t t0) {
            int4_block<NT>(w.block(b), x + t0 * ldx, ldx, ng, og, w.gscale.data() + s,
                           w.gmin.data() + s, a.gsum.data() + t0 * ng, a.scale.data() + t0,
                           y + t0 * ldy + b * kRowBlock, ldy);
        });
    }
}

void q4k_avx2(const PackedMatrix& w, const PackedActs& a, int64_t b0, int64_t b1, float* y,
              int64_t ldy) {
    const int64_t ldx = w.kp / 4, ng = w.groups(), nsb = w.kp / 256;
    const auto* x = reinterpret_cast<const uint32_t*>(a.i8.data());
    for (int64_t b = b0; b < b1; ++b) {
        const size_t g = size_t(b * ng * kRowBlock), s = size_t(b * nsb * kRowBlock);
        for (int64_t t0 = 0; t0 < a.T; t0 += 2) {
            auto run = [&]<int NT>() {
                q4k_block<NT>(w.block(b), x + t0 * ldx, ldx, nsb, w.ksc.data() + g,
                              w.kmin.data() + g, w.kd.data() + s, w.kdmin.data() + s,
                              a.gsum.data() + t0 * ng, ng, a.scale.data() + t0 * nsb, nsb,
                              y + t0 * ldy + b * kRowBlock, ldy);
            };
            if (a.T - t0 >= 2)
                run.template operator()<2>();
            else
                run.template operator()<1>();
        }
    }
}

}  // namespace
}  // namespace moe::kern

#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options

namespace moe::kern {

const KernelTable& avx2_kernels() {
    static const KernelTable t{&bf16_avx2, &int8_avx2, &int4_avx2, &q4k_avx2};
    return t;
}

}  // namespace moe::kern
