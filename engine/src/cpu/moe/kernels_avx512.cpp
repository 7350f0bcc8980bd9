// AVX-512 kernels: BF16 with vdpbf16ps, INT8/INT4 with VNNI vpdpbusd. One 64-byte weight line
// (16 output rows x one k-pair / k-quad / k-octet) is one zmm, multiplied with up to 4 tokens'
// broadcast activations, so decode streams each weight byte exactly once and prefill re-reads a
// 16-row block (tens to hundreds of KB, L2-resident) once per 4 tokens.
//
// Everything below the target pragma is compiled for AVX-512 and must keep internal linkage
// (anonymous namespace): an inline function with external linkage compiled here could be picked
// by the linker for callers elsewhere and fault on CPUs without AVX-512. Only the table accessor
// at the end (compiled without the pragma) is visible outside.
#include <immintrin.h>

#include <algorithm>

#include "cpu/moe/kernels_impl.h"

#pragma GCC push_options
// GCC 12 warns about the deliberately undefined vector inside _mm512_cvtepi32_ps (its
// _mm512_undefined_ps pass-through operand): a false positive in the intrinsic headers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16,avx512vnni")
// clang ignores GCC target pragmas; its own form gives the region the same ISA.
#ifdef __clang__
#pragma clang attribute push(                                                                 \
    __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16,avx512vnni"))), \
    apply_to = function)
#endif

namespace moe::kern {
namespace {

constexpr int kTok = 4;  // tokens per weight pass: 8 accumulators of 2 k-phases

// Software prefetch distance along the packed weights. At decode each core streams its share
// of the experts from DRAM; the hardware prefetcher stops at every 4 KiB page and ramps up
// again, which leaves the smaller formats (more compute per byte) short of the bandwidth.
// Prefetches cross pages; the distance covers DRAM latency at a core's share of bandwidth.
constexpr int64_t kPrefetch = 2048;
inline void prefetch_line(const uint8_t* p) {
    _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
}

inline __m512i bcast32(const uint32_t* p) {
    return _mm512_set1_epi32(int(*p));
}

// Two accumulator sets (even/odd k-step) hide the 4-6 cycle FMA/dot latency at one token.
template <int NT>
void bf16_block(const uint8_t* wb, const uint32_t* x, int64_t ldx, int64_t pairs, float* y,
                int64_t ldy) {
    __m512 acc0[NT], acc1[NT];
    for (int t = 0; t < NT; ++t) acc0[t] = acc1[t] = _mm512_setzero_ps();
    for (int64_t p = 0; p < pairs; p += 2) {
        prefetch_line(wb + p * 64 + kPrefetch);
        prefetch_line(wb + p * 64 + kPrefetch + 64);
        const __m512bh w0 = (__m512bh)_mm512_load_si512(wb + p * 64);
        const __m512bh w1 = (__m512bh)_mm512_load_si512(wb + (p + 1) * 64);
        for (int t = 0; t < NT; ++t) {
            acc0[t] = _mm512_dpbf16_ps(acc0[t], (__m512bh)bcast32(x + t * ldx + p), w0);
            acc1[t] = _mm512_dpbf16_ps(acc1[t], (__m512bh)bcast32(x + t * ldx + p + 1), w1);
        }
    }
    for (int t = 0; t < NT; ++t) _mm512_storeu_ps(y + t * ldy, _mm512_add_ps(acc0[t], acc1[t]));
}

// BF16 weights times fp32 activations (PackedMatrix::f32_acts): each 32-bit lane holds the
// row's k-pair, so shifting left by 16 gives the even k as fp32 and masking the low half the odd.
template <int NT>
void bf16_f32_block(const uint8_t* wb, const float* x, int64_t ldx, int64_t pairs, float* y,
                    int64_t ldy) {
    const __m512i himask = _mm512_set1_epi32(int(0xFFFF0000u));
    __m512 acc0[NT], acc1[NT];
    for (int t = 0; t < NT; ++t) acc0[t] = acc1[t] = _mm512_setzero_ps();
    for (int64_t p = 0; p < pairs; ++p) {
        prefetch_line(wb + p * 64 + kPrefetch);
        const __m512i v = _mm512_load_si512(wb + p * 64);
        const __m512 even = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
        const __m512 odd = _mm512_castsi512_ps(_mm512_and_si512(v, himask));
        for (int t = 0; t < NT; ++t) {
            acc0[t] = _mm512_fmadd_ps(even, _mm512_set1_ps(x[t * ldx + 2 * p]), acc0[t]);
            acc1[t] = _mm512_fmadd_ps(odd, _mm512_set1_ps(x[t * ldx + 2 * p + 1]), acc1[t]);
        }
    }
    for (int t = 0; t < NT; ++t) _mm512_storeu_ps(y + t * ldy, _mm512_add_ps(acc0[t], acc1[t]));
}

// vpdpbusd multiplies unsigned bytes (here the activations, stored as x + 128) with signed bytes
// (the weights); sum(w * (x + 128)) - 128 * sum(w) is the signed dot product.
template <int NT>
void int8_block(const uint8_t* wb, const uint32_t* xu, int64_t ldx, int64_t quads,
                const int32_t* rowsum, const float* wscale, const float* xs, float* y,
                int64_t ldy) {
    __m512i acc0[NT], acc1[NT];
    for (int t = 0; t < NT; ++t) acc0[t] = acc1[t] = _mm512_setzero_si512();
    for (int64_t q = 0; q < quads; q += 2) {
        prefetch_line(wb + q * 64 + kPrefetch);
        prefetch_line(wb + q * 64 + kPrefetch + 64);
        const __m512i w0 = _mm512_load_si512(wb + q * 64);
        const __m512i w1 = _mm512_load_si512(wb + (q + 1) * 64);
        for (int t = 0; t < NT; ++t) {
            acc0[t] = _mm512_dpbusd_epi32(acc0[t], bcast32(xu + t * ldx + q), w0);
            acc1[t] = _mm512_dpbusd_epi32(acc1[t], bcast32(xu + t * ldx + q + 1), w1);
        }
    }
    const __m512i comp = _mm512_slli_epi32(_mm512_loadu_si512(rowsum), 7);
    const __m512 ws = _mm512_loadu_ps(wscale);
    for (int t = 0; t < NT; ++t) {
        const __m512i acc = _mm512_sub_epi32(_mm512_add_epi32(acc0[t], acc1[t]), comp);
        const __m512 s = _mm512_mul_ps(ws, _mm512_set1_ps(xs[t]));
        _mm512_storeu_ps(y + t * ldy, _mm512_mul_ps(_mm512_cvtepi32_ps(acc), s));
    }
}

// The nibble layout shared by INT4 and Q4K: isum[t] = the integer dot products of the 16 rows'
// 4-bit values over lines [o0, o1) with token t's int8 activations (16 int32 lanes). The
// unsigned nibbles are vpdpbusd's unsigned operand; low and high nibbles accumulate apart (two
// short dependency chains per token).
template <int NT>
inline void nibble_dot(const uint8_t* wb, const uint32_t* xi, int64_t ldx, int64_t o0, int64_t o1,
                       __m512i* isum) {
    const __m512i mask = _mm512_set1_epi8(0x0F);
    __m512i lo_acc[NT], hi_acc[NT];
    for (int t = 0; t < NT; ++t) lo_acc[t] = hi_acc[t] = _mm512_setzero_si512();
    for (int64_t o = o0; o < o1; ++o) {
        prefetch_line(wb + o * 64 + kPrefetch);
        const __m512i v = _mm512_load_si512(wb + o * 64);
        const __m512i lo = _mm512_and_si512(v, mask);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), mask);
        for (int t = 0; t < NT; ++t) {
            lo_acc[t] = _mm512_dpbusd_epi32(lo_acc[t], lo, bcast32(xi + t * ldx + 2 * o));
            hi_acc[t] = _mm512_dpbusd_epi32(hi_acc[t], hi, bcast32(xi + t * ldx + 2 * o + 1));
        }
    }
    for (int t = 0; t < NT; ++t) isum[t] = _mm512_add_epi32(lo_acc[t], hi_acc[t]);
}

// INT4: the unsigned nibbles are vpdpbusd's unsigned operand and the int8 activations the
// signed one, so no compensation is needed; the per-group scale and min are applied in fp32
// after each group: y = xs * sum_g (d_g * sum(q * x) + m_g * sum(x)).
template <int NT>
void int4_block(const uint8_t* wb, const uint32_t* xi, int64_t ldx, int64_t ng, int64_t og,
                const float* gs, const float* gm, const float* gsum, const float* xs, float* y,
                int64_t ldy) {
    __m512 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t g = 0; g < ng; ++g) {
        __m512i isum[NT];
        nibble_dot<NT>(wb, xi, ldx, g * og, (g + 1) * og, isum);
        // The group scales are streams of their own (one line per group each).
        prefetch_line(reinterpret_cast<const uint8_t*>(gs + (g + 32) * kRowBlock));
        prefetch_line(reinterpret_cast<const uint8_t*>(gm + (g + 32) * kRowBlock));
        const __m512 d = _mm512_loadu_ps(gs + g * kRowBlock);
        const __m512 m = _mm512_loadu_ps(gm + g * kRowBlock);
        for (int t = 0; t < NT; ++t) {
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), d, acc[t]);
            acc[t] = _mm512_fmadd_ps(m, _mm512_set1_ps(gsum[t * ng + g]), acc[t]);
        }
    }
    for (int t = 0; t < NT; ++t)
        _mm512_storeu_ps(y + t * ldy, _mm512_mul_ps(acc[t], _mm512_set1_ps(xs[t])));
}

// Q4K: the INT4 loop per 32-element sub-block, then the sub-block's six-bit scale and min
// applied as integers (exact) over the super-block, and d / dmin in fp32 once per super-block:
// y = sum_sb xs_sb * (d * sum_g sc_g * isum_g - dmin * sum_g m_g * gsum_g).
template <int NT>
void q4k_block(const uint8_t* wb, const uint32_t* xi, int64_t ldx, int64_t nsb, const uint8_t* sc,
               const uint8_t* mn, const float* kd, const float* kdm, const float* gsum, int64_t ldg,
               const float* xs, int64_t ldxs, float* y, int64_t ldy) {
    __m512 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
        __m512i s1[NT];
        __m512 s2[NT];
        for (int t = 0; t < NT; ++t) s1[t] = _mm512_setzero_si512(), s2[t] = _mm512_setzero_ps();
        for (int64_t g = sb * 8; g < sb * 8 + 8; ++g) {
            __m512i isum[NT];
            nibble_dot<NT>(wb, xi, ldx, g * 4, g * 4 + 4, isum);
            prefetch_line(sc + (g + 128) * kRowBlock);
            prefetch_line(mn + (g + 128) * kRowBlock);
            const __m512i scv = _mm512_cvtepu8_epi32(
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + g * kRowBlock)));
            const __m512 mnv = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(mn + g * kRowBlock))));
            for (int t = 0; t < NT; ++t) {
                s1[t] = _mm512_add_epi32(s1[t], _mm512_mullo_epi32(isum[t], scv));
                s2[t] = _mm512_fmadd_ps(mnv, _mm512_set1_ps(gsum[t * ldg + g]), s2[t]);
            }
        }
        prefetch_line(reinterpret_cast<const uint8_t*>(kd + (sb + 16) * kRowBlock));
        prefetch_line(reinterpret_cast<const uint8_t*>(kdm + (sb + 16) * kRowBlock));
        const __m512 d = _mm512_loadu_ps(kd + sb * kRowBlock);
        const __m512 dm = _mm512_loadu_ps(kdm + sb * kRowBlock);
        for (int t = 0; t < NT; ++t) {
            const __m512 v =
                _mm512_fmsub_ps(d, _mm512_cvtepi32_ps(s1[t]), _mm512_mul_ps(dm, s2[t]));
            acc[t] = _mm512_fmadd_ps(v, _mm512_set1_ps(xs[t * ldxs + sb]), acc[t]);
        }
    }
    for (int t = 0; t < NT; ++t) _mm512_storeu_ps(y + t * ldy, acc[t]);
}

// Calls f.template operator()<NT>(t0) for token chunks of up to kTok tokens.
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

void bf16_avx512(const PackedMatrix& w, const PackedActs& a, int64_t b0, int64_t b1, float* y,
                 int64_t ldy) {
    if (w.f32_acts) {
        for (int64_t b = b0; b < b1; ++b) {
            over_tokens(a.T, [&]<int NT>(int64_t t0) {
                bf16_f32_block<NT>(w.block(b), a.f32.data() + t0 * w.kp, w.kp, w.kp / 2,
                                   y + t0 * ldy + b * kRowBlock, ldy);
            });
        }
        return;
    }
    const int64_t ldx = w.kp / 2;
    const auto* x = reinterpret_cast<const uint32_t*>(a.bf16.data());
    for (int64_t b = b0; b < b1; ++b) {
        over_tokens(a.T, [&]<int NT>(int64_t t0) {
            bf16_block<NT>(w.block(b), x + t0 * ldx, ldx, ldx, y + t0 * ldy + b * kRowBlock, ldy);
        });
    }
}

void int8_avx512(const PackedMatrix& w, const PackedActs& a, int64_t b0, int64_t b1, float* y,
                 int64_t ldy) {
    const int64_t ldx = w.kp / 4;
    const auto* x = reinterpret_cast<const uint32_t*>(a.u8.data());
    for (int64_t b = b0; b < b1; ++b) {
        over_tokens(a.T, [&]<int NT>(int64_t t0) {
            int8_block<NT>(w.block(b), x + t0 * ldx, ldx, ldx, w.rowsum.data() + b * kRowBlock,
                           w.scale.data() + b * kRowBlock, a.scale.data() + t0,
                           y + t0 * ldy + b * kRowBlock, ldy);
        });
    }
}

void int4_avx512(const PackedMatrix& w, const PackedActs& a, int64_t b0, int64_t b1, float* y,
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

void q4k_avx512(const PackedMatrix& w, const PackedActs& a, int64_t b0, int64_t b1, float* y,
                int64_t ldy) {
    const int64_t ldx = w.kp / 4, ng = w.groups(), nsb = w.kp / 256;
    const auto* x = reinterpret_cast<const uint32_t*>(a.i8.data());
    for (int64_t b = b0; b < b1; ++b) {
        const size_t g = size_t(b * ng * kRowBlock), s = size_t(b * nsb * kRowBlock);
        over_tokens(a.T, [&]<int NT>(int64_t t0) {
            q4k_block<NT>(w.block(b), x + t0 * ldx, ldx, nsb, w.ksc.data() + g, w.kmin.data() + g,
                          w.kd.data() + s, w.kdmin.data() + s, a.gsum.data() + t0 * ng, ng,
                          a.scale.data() + t0 * nsb, nsb, y + t0 * ldy + b * kRowBlock, ldy);
        });
    }
}

}  // namespace
}  // namespace moe::kern

#pragma GCC diagnostic pop
#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options

namespace moe::kern {

const KernelTable& avx512_kernels() {
    static const KernelTable t{&bf16_avx512, &int8_avx512, &int4_avx512, &q4k_avx512};
    return t;
}

}  // namespace moe::kern
