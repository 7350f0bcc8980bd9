// Tiled GGUF GEMM (gguf_gemm.h): the "avx512vnni" variant for Q4_K and Q8_0.
//
// Bit-exactness follows gguf_simd_impl.h: integer parts are exact in any order; the float
// operations are those of ggml's scalar vec_dot, in its order (`opaque` keeps the compiler
// from fusing a mul+add pair into an FMA):
//  * Q8_0: sumf += float(isum_b) * (f16(x.d) * f16(y.d)) block by block. Eight rows share one
//    vector (lane = row): the rows' 32-byte blocks are transposed so that dword k of lane r
//    holds row r's quants 4k..4k+3 (made unsigned by +128), and vpdpbusd against the token's
//    broadcast dword k gives every row's block sum in its lane with no horizontal reduction;
//    128 * sum(y) is subtracted afterwards.
//  * Q4_K: per super-block, eight int32 lanes (lane l = elements = l mod 8) scaled by
//    f16(x.d) * y.d into eight float lanes, the mins subtracted from a separate scalar sum,
//    everything added up at the end. Weights and activations are permuted by perm32 so that
//    vpmaddubsw/vpdpwssd keep ggml's lanes.
#include "cpu/moe/gguf_gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "core/error.h"
#include "cpu/moe/gguf_simd_kernels.h"
#include "cpu/quants_blocks.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#endif

namespace moe {
namespace {

using namespace moe::quants;

#define GG_TARGET "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"
#define GG_FN __attribute__((target(GG_TARGET))) inline

constexpr int kTok = 8;  // tokens per tile

GG_FN __m256 opaque(__m256 v) {
    __asm__("" : "+x"(v));
    return v;
}
GG_FN __m128 opaque(__m128 v) {
    __asm__("" : "+x"(v));
    return v;
}
GG_FN float opaque(float v) {
    __asm__("" : "+x"(v));
    return v;
}

GG_FN float f16(uint16_t h) {
    return _cvtsh_ss(h);
}

GG_FN uint16_t load_u16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

GG_FN int32_t load_i32(const void* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

GG_FN __m256i loadu256(const void* p) {
    return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

GG_FN int hsum128_epi32(__m128i v) {
    v = _mm_add_epi32(v, _mm_unpackhi_epi64(v, v));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 1));
    return _mm_cvtsi128_si32(v);
}

// As gguf_simd_impl.h: dword l of the result holds bytes l, l+8, l+16, l+24.
GG_FN __m256i perm32(__m256i v) {
    const __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    const __m256i tr = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,  //
                                        0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(v, idx), tr);
}

uint8_t* scratch(size_t bytes) {
    thread_local std::vector<uint8_t> buf;
    if (buf.size() < bytes + 64) buf.resize(bytes + 64);
    const auto p = reinterpret_cast<uintptr_t>(buf.data());
    return buf.data() + ((64 - (p & 63)) & 63);
}

// Stores the first `cnt` lanes of v at p.
GG_FN void store_lanes(float* p, __m256 v, int cnt) {
    if (cnt == 8)
        _mm256_storeu_ps(p, v);
    else
        _mm256_mask_storeu_ps(p, __mmask8((1u << cnt) - 1), v);
}

// ---------------------------------------------------------------- Q8_0

// 8x8 transpose of dwords: out[k] lane r = in[r] dword k.
GG_FN void transpose8(__m256i v[8]) {
    __m256i t[8], u[8];
    for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
    }
    // t0 = r0k0 r1k0 r0k1 r1k1 | r0k4 r1k4 r0k5 r1k5 ; t1 = r0k2 r1k2 r0k3 r1k3 | ...
    for (int i = 0; i < 2; ++i) {
        u[4 * i + 0] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);      // k0 (r0..r3) | k4
        u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);      // k1 | k5
        u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);  // k2 | k6
        u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);  // k3 | k7
    }
    for (int k = 0; k < 4; ++k) {
        v[k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x20);
        v[k + 4] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x31);
    }
}

// One tile: 8 rows (the last `8 - nr` duplicated, not stored) x NT tokens.
template <int NT>
GG_FN void q8_0_tile(const uint8_t* w, size_t rb, int nr, const uint8_t* const* y, int64_t nb,
                     const float* dy, const int32_t* off, float* out, int64_t ldo) {
    const uint8_t* row[8];
    for (int r = 0; r < 8; ++r) row[r] = w + size_t(r < nr ? r : nr - 1) * rb;
    const __m256i k80 = _mm256_set1_epi8(char(0x80));
    __m256 accf[NT];
    for (int t = 0; t < NT; ++t) accf[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        const size_t bo = size_t(b) * sizeof(BlockQ8_0);
        __m256i W[8];
        alignas(16) uint16_t h[8];
        for (int r = 0; r < 8; ++r) {
            W[r] = _mm256_xor_si256(loadu256(row[r] + bo + 2), k80);
            h[r] = load_u16(row[r] + bo);
        }
        transpose8(W);
        const __m256 dx = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(h)));
        __m256i acc[NT];
        for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k)
#pragma GCC unroll 8
            for (int t = 0; t < NT; ++t)
                acc[t] = _mm256_dpbusd_epi32(acc[t], W[k],
                                             _mm256_set1_epi32(load_i32(y[t] + bo + 2 + 4 * k)));
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) {
            const __m256i s = _mm256_sub_epi32(acc[t], _mm256_set1_epi32(off[t * nb + b]));
            // ggml: sumf += float(isum) * (f16(x.d) * f16(y.d))
            accf[t] = _mm256_add_ps(
                accf[t], opaque(_mm256_mul_ps(_mm256_cvtepi32_ps(s),
                                              _mm256_mul_ps(dx, _mm256_set1_ps(dy[t * nb + b])))));
        }
    }
    for (int t = 0; t < NT; ++t) store_lanes(out + t * ldo, accf[t], nr);
}

template <int NT>
GG_FN void q8_0_tokens(const uint8_t* w, size_t rb, int64_t rows, const uint8_t* const* y,
                       int64_t nb, float* out, int64_t ldo) {
    auto* dy = reinterpret_cast<float*>(scratch(size_t(NT * nb) * 8));
    auto* off = reinterpret_cast<int32_t*>(dy + NT * nb);
    for (int t = 0; t < NT; ++t)
        for (int64_t b = 0; b < nb; ++b) {
            const auto* blk = reinterpret_cast<const BlockQ8_0*>(y[t]) + b;
            dy[t * nb + b] = f16(blk->d);
            int s = 0;
            for (int j = 0; j < QK8_0; ++j) s += blk->qs[j];
            off[t * nb + b] = 128 * s;
        }
    for (int64_t r = 0; r < rows; r += 8)
        q8_0_tile<NT>(w + size_t(r) * rb, rb, int(std::min<int64_t>(8, rows - r)), y, nb, dy, off,
                      out + r, ldo);
}

// ---------------------------------------------------------------- Q4_K

// The 8 six-bit scales and 8 mins of a Q4_K block as bytes 0..7 and 8..15.
GG_FN __m128i scales_mins_k4(const uint8_t* sc12) {
    constexpr uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
    uint32_t u[4];
    std::memcpy(u, sc12, 12);
    u[3] = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
    const uint32_t uaux = u[1] & kmask1;
    u[1] = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
    u[2] = uaux;
    u[0] &= kmask1;
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(u));
}

GG_FN __m256i scale_bcast(__m256i sc, int j) {
    const __m256i pat = _mm256_set1_epi16(int16_t((2 * j) | ((2 * j + 1) << 8)));
    return _mm256_shuffle_epi8(sc, pat);
}

// A decoded Q4_K / Q5_K super-block of one row.
struct DecQ4K {
    __m256i q[8];   // group j (32 elements, perm32 order): low nibbles (j even) / high (j odd)
    __m256i sc[8];  // int16 scale of group j in every lane
    __m128i mins;   // 8 int16 mins
    float d, dmin;
};

// Prepared activations of one token: perm32'd quants, pair sums of bsums, d per block.
struct ActQ8K {
    const uint8_t* yp;
    const __m128i* bs2;  // Q4_K / Q5_K
    const BlockQ8K* y;
    const __m256i* m32y;  // Q6_K: 32 * y as vpmaddubsw pair sums, 8 per block
};

// Q6_K, as rows_q6k in gguf_simd_impl.h: quants used unsigned (0..63), 32 * y subtracted.
template <int R, int NT>
GG_FN void q6_k_tile(const uint8_t* w, size_t rb, const ActQ8K* a, int64_t nb, float* out,
                     int64_t ldo) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m256 sums[R][NT];
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < NT; ++t) sums[r][t] = _mm256_setzero_ps();
    struct Dec {
        __m256i q[8], sc[8];
        float d;
    } dec[R];
    for (int64_t i = 0; i < nb; ++i) {
        for (int r = 0; r < R; ++r) {
            const auto* x = reinterpret_cast<const BlockQ6K*>(w + r * rb) + i;
            const __m256i sc =
                _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x->scales)));
            for (int j = 0; j < 8; ++j)
                dec[r].sc[j] = _mm256_permutevar8x32_epi32(sc, _mm256_set1_epi32(j));
            for (int h = 0; h < 2; ++h) {
                const __m256i A = perm32(loadu256(x->ql + 64 * h));
                const __m256i B = perm32(loadu256(x->ql + 64 * h + 32));
                const __m256i H = perm32(loadu256(x->qh + 32 * h));
                dec[r].q[4 * h + 0] = _mm256_or_si256(
                    _mm256_and_si256(A, m4), _mm256_and_si256(_mm256_slli_epi16(H, 4), m30));
                dec[r].q[4 * h + 1] = _mm256_or_si256(
                    _mm256_and_si256(B, m4), _mm256_and_si256(_mm256_slli_epi16(H, 2), m30));
                dec[r].q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(A, 4), m4),
                                                      _mm256_and_si256(H, m30));
                dec[r].q[4 * h + 3] =
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(B, 4), m4),
                                    _mm256_and_si256(_mm256_srli_epi16(H, 2), m30));
            }
            dec[r].d = f16(x->d);
        }
#pragma GCC unroll 1
        for (int t = 0; t < NT; ++t) {
            const float yd = a[t].y[i].d;
            __m256i y[8];
            for (int j = 0; j < 8; ++j)
                y[j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(a[t].yp + i * QK_K) + j);
            const __m256i* m32 = a[t].m32y + i * 8;
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
                __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
#pragma GCC unroll 8
                for (int j = 0; j < 8; j += 2) {
                    acc0 = _mm256_dpwssd_epi32(
                        acc0, _mm256_sub_epi16(_mm256_maddubs_epi16(dec[r].q[j], y[j]), m32[j]),
                        dec[r].sc[j]);
                    acc1 = _mm256_dpwssd_epi32(
                        acc1,
                        _mm256_sub_epi16(_mm256_maddubs_epi16(dec[r].q[j + 1], y[j + 1]),
                                         m32[j + 1]),
                        dec[r].sc[j + 1]);
                }
                const __m256i acc = _mm256_add_epi32(acc0, acc1);
                const float d = dec[r].d * yd;
                sums[r][t] = _mm256_add_ps(
                    sums[r][t], opaque(_mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(acc))));
            }
        }
    }
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < NT; ++t) {
            alignas(32) float l[8];
            _mm256_store_ps(l, sums[r][t]);
            float s = 0.0f;
            for (int j = 0; j < 8; ++j) s += l[j];
            out[t * ldo + r] = s;
        }
}

template <int R, int NT, bool Hi5>
GG_FN void q4_k_tile(const uint8_t* w, size_t rb, const ActQ8K* a, int64_t nb, float* out,
                     int64_t ldo) {
    using Block = std::conditional_t<Hi5, BlockQ5K, BlockQ4K>;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m16 = _mm256_set1_epi8(0x10);
    __m256 sums[R][NT];
    float sumf[R][NT];
    __m128 sumf4[NT];  // R == 4: the min terms of the four rows (lane = row)
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < NT; ++t) sums[r][t] = _mm256_setzero_ps(), sumf[r][t] = 0.0f;
    for (int t = 0; t < NT; ++t) sumf4[t] = _mm_setzero_ps();
    DecQ4K dec[R];
    __m256i mins01, mins23;
    __m128 dmin4;
    for (int64_t i = 0; i < nb; ++i) {
        for (int r = 0; r < R; ++r) {
            const auto* x = reinterpret_cast<const Block*>(w + r * rb) + i;
            const __m128i sm = scales_mins_k4(x->scales);
            dec[r].mins = _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8));
            const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
            for (int j = 0; j < 8; ++j) dec[r].sc[j] = scale_bcast(sc, j);
            __m256i hb = _mm256_setzero_si256();
            if constexpr (Hi5) hb = perm32(loadu256(x->qh));
            for (int c = 0; c < 4; ++c) {
                const __m256i q = perm32(loadu256(x->qs + 32 * c));
                __m256i lo = _mm256_and_si256(q, m4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                if constexpr (Hi5) {
                    // Q5_K: bits 2c / 2c+1 of qh are the fifth bit (as gguf_simd_impl.h).
                    lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(hb, 4), m16));
                    hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(hb, 3), m16));
                    hb = _mm256_srli_epi16(hb, 2);
                }
                dec[r].q[2 * c] = lo;
                dec[r].q[2 * c + 1] = hi;
            }
            dec[r].d = f16(x->d);
            dec[r].dmin = f16(x->dmin);
        }
        if constexpr (R == 4) {
            mins01 = _mm256_set_m128i(dec[1].mins, dec[0].mins);
            mins23 = _mm256_set_m128i(dec[3].mins, dec[2].mins);
            dmin4 = _mm_setr_ps(dec[0].dmin, dec[1].dmin, dec[2].dmin, dec[3].dmin);
        }
#pragma GCC unroll 1
        for (int t = 0; t < NT; ++t) {
            const float yd = a[t].y[i].d;
            __m256i y[8];
            for (int j = 0; j < 8; ++j)
                y[j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(a[t].yp + i * QK_K) + j);
            const __m128i bs2 = a[t].bs2[i];
            if constexpr (R == 4) {
                // The four rows' min terms at once (same float operations per lane).
                const __m256i bs = _mm256_broadcastsi128_si256(bs2);
                __m256i h =
                    _mm256_hadd_epi32(_mm256_madd_epi16(mins01, bs), _mm256_madd_epi16(mins23, bs));
                h = _mm256_hadd_epi32(h, h);  // [r0 r2 r0 r2 | r1 r3 r1 r3]
                const __m256i sumi =
                    _mm256_permutevar8x32_epi32(h, _mm256_setr_epi32(0, 4, 1, 5, 0, 0, 0, 0));
                const __m128 dmin = _mm_mul_ps(dmin4, _mm_set1_ps(yd));
                sumf4[t] = _mm_sub_ps(
                    sumf4[t],
                    opaque(_mm_mul_ps(dmin, _mm_cvtepi32_ps(_mm256_castsi256_si128(sumi)))));
            }
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
                if constexpr (R != 4) {
                    // ggml: sumf -= f16(dmin) * y.d * float(sum_j bsum_pair[j] * min[j])
                    const int sumi = hsum128_epi32(_mm_madd_epi16(dec[r].mins, bs2));
                    const float dmin = dec[r].dmin * yd;
                    sumf[r][t] -= opaque(dmin * float(sumi));
                }
                __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
#pragma GCC unroll 8
                for (int j = 0; j < 8; j += 2) {
                    acc0 = _mm256_dpwssd_epi32(acc0, _mm256_maddubs_epi16(dec[r].q[j], y[j]),
                                               dec[r].sc[j]);
                    acc1 = _mm256_dpwssd_epi32(
                        acc1, _mm256_maddubs_epi16(dec[r].q[j + 1], y[j + 1]), dec[r].sc[j + 1]);
                }
                const __m256i acc = _mm256_add_epi32(acc0, acc1);
                // ggml: sums[l] += (f16(x.d) * y.d) * float(aux32[l])
                const float d = dec[r].d * yd;
                sums[r][t] = _mm256_add_ps(
                    sums[r][t], opaque(_mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(acc))));
            }
        }
    }
    if constexpr (R == 4)
        for (int t = 0; t < NT; ++t) {
            alignas(16) float m[4];
            _mm_store_ps(m, sumf4[t]);
            for (int r = 0; r < 4; ++r) sumf[r][t] = m[r];
        }
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < NT; ++t) {
            alignas(32) float l[8];
            _mm256_store_ps(l, sums[r][t]);
            float s = sumf[r][t];
            for (int j = 0; j < 8; ++j) s += l[j];
            out[t * ldo + r] = s;
        }
}

template <int NT, int Kind>  // Kind 4: Q4_K, 5: Q5_K, 6: Q6_K
GG_FN void k_tokens(const uint8_t* w, size_t rb, int64_t rows, const uint8_t* const* y, int64_t nb,
                    float* out, int64_t ldo) {
    const size_t n = size_t(nb) * QK_K;
    constexpr size_t kExtra = Kind == 6 ? 256 : 16;               // per block: m32y or bs2
    const size_t per = (n + size_t(nb) * kExtra + 63) / 64 * 64;  // keeps yp 64-byte aligned
    uint8_t* s = scratch(NT * per);
    ActQ8K a[NT];
    for (int t = 0; t < NT; ++t) {
        uint8_t* yp = s + t * per;
        auto* bs2 = reinterpret_cast<__m128i*>(yp + n);
        auto* m32y = reinterpret_cast<__m256i*>(yp + n);
        const auto* blk = reinterpret_cast<const BlockQ8K*>(y[t]);
        for (int64_t i = 0; i < nb; ++i) {
            for (int c = 0; c < QK_K / 32; ++c) {
                const __m256i p = perm32(loadu256(blk[i].qs + 32 * c));
                _mm256_store_si256(reinterpret_cast<__m256i*>(yp + i * QK_K + 32 * c), p);
                if constexpr (Kind == 6)
                    m32y[i * 8 + c] = _mm256_maddubs_epi16(_mm256_set1_epi8(32), p);
            }
            if constexpr (Kind != 6) {
                const __m256i b = loadu256(blk[i].bsums);
                const __m256i pairs = _mm256_hadd_epi16(b, b);
                bs2[i] = _mm256_castsi256_si128(_mm256_permute4x64_epi64(pairs, 0x08));
            }
        }
        a[t] = {yp, bs2, blk, m32y};
    }
    constexpr int R = 4;
    int64_t r = 0;
    if constexpr (Kind == 6) {
        for (; r + R <= rows; r += R) q6_k_tile<R, NT>(w + size_t(r) * rb, rb, a, nb, out + r, ldo);
        for (; r < rows; ++r) q6_k_tile<1, NT>(w + size_t(r) * rb, rb, a, nb, out + r, ldo);
    } else {
        for (; r + R <= rows; r += R)
            q4_k_tile<R, NT, Kind == 5>(w + size_t(r) * rb, rb, a, nb, out + r, ldo);
        for (; r < rows; ++r)
            q4_k_tile<1, NT, Kind == 5>(w + size_t(r) * rb, rb, a, nb, out + r, ldo);
    }
}

// ---------------------------------------------------------------- driver

using TokensFn = void (*)(const uint8_t*, size_t, int64_t, const uint8_t* const*, int64_t, float*,
                          int64_t);

template <TokensFn F1, TokensFn F2, TokensFn F3, TokensFn F4, TokensFn F5, TokensFn F6, TokensFn F7,
          TokensFn F8>
void drive(const void* weight_rows, size_t row_bytes, int64_t rows, const void* act, size_t act_row,
           int64_t tokens, int64_t n, float* out, int64_t ldo, int64_t block) {
    if (n <= 0 || n % block)
        throw Error("GGUF GEMM: length " + std::to_string(n) + " is not a positive multiple of " +
                    std::to_string(block));
    static constexpr TokensFn fns[kTok] = {F1, F2, F3, F4, F5, F6, F7, F8};
    const int64_t nb = n / block;
    const auto* w = static_cast<const uint8_t*>(weight_rows);
    const auto* a = static_cast<const uint8_t*>(act);
    for (int64_t t0 = 0; t0 < tokens; t0 += kTok) {
        const int nt = int(std::min<int64_t>(kTok, tokens - t0));
        const uint8_t* y[kTok];
        for (int t = 0; t < nt; ++t) y[t] = a + size_t(t0 + t) * act_row;
        fns[nt - 1](w, row_bytes, rows, y, nb, out + t0 * ldo, ldo);
    }
}

void q8_0_gemm(const void* w, size_t rb, int64_t rows, const void* act, size_t ar, int64_t tokens,
               int64_t n, float* out, int64_t ldo) {
    drive<q8_0_tokens<1>, q8_0_tokens<2>, q8_0_tokens<3>, q8_0_tokens<4>, q8_0_tokens<5>,
          q8_0_tokens<6>, q8_0_tokens<7>, q8_0_tokens<8>>(w, rb, rows, act, ar, tokens, n, out, ldo,
                                                          QK8_0);
}

template <int Kind>
void k_gemm(const void* w, size_t rb, int64_t rows, const void* act, size_t ar, int64_t tokens,
            int64_t n, float* out, int64_t ldo) {
    drive<k_tokens<1, Kind>, k_tokens<2, Kind>, k_tokens<3, Kind>, k_tokens<4, Kind>,
          k_tokens<5, Kind>, k_tokens<6, Kind>, k_tokens<7, Kind>, k_tokens<8, Kind>>(
        w, rb, rows, act, ar, tokens, n, out, ldo, QK_K);
}

// The same ISA as the row kernels' "avx512vnni" variant (GG_TARGET = its GK_TARGET): asked of
// them, so that the check lives in one place.
bool avx512vnni_supported() {
    for (const GgufSimdVariant& v : gguf_simd_variants())
        if (std::string(v.name) == "avx512vnni") return v.supported;
    return false;
}

}  // namespace

std::vector<GgufGemmVariant> gguf_gemm_variants() {
    return {{"avx512vnni", avx512vnni_supported()}};
}

GgufGemm gguf_gemm_variant(GgmlType type, const char* variant) {
    if (!variant || std::string(variant) != "avx512vnni") return {nullptr, "none"};
    switch (type) {
        case GgmlType::Q8_0:
            return {&q8_0_gemm, "avx512vnni"};
        case GgmlType::Q4_K:
            return {&k_gemm<4>, "avx512vnni"};
        case GgmlType::Q5_K:
            return {&k_gemm<5>, "avx512vnni"};
        case GgmlType::Q6_K:
            return {&k_gemm<6>, "avx512vnni"};
        default:
            return {nullptr, "none"};
    }
}

GgufGemm gguf_gemm(GgmlType type) {
    static const bool enabled = [] {
        if (!avx512vnni_supported()) return false;
        const char* off = std::getenv("MOE_GGUF_GEMM");
        if (off && std::string(off) == "0") return false;
        const char* env = std::getenv("MOE_GGUF_SIMD");
        return !env || !*env || std::string(env) == "avx512vnni";
    }();
    if (!enabled) return {nullptr, "none"};
    return gguf_gemm_variant(type, "avx512vnni");
}

}  // namespace moe
