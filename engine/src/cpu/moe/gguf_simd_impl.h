// The SIMD row kernels of gguf_simd_kernels.h, written once and compiled once per instruction
// set variant. Not a normal header: a variant's .cpp defines
//
//   GK_TARGET  the function-level target string, e.g. "avx2,fma,f16c"
//   GK_NS      the namespace its entry point lives in (avx2, avx512vnni, avxvnni)
//   GK_VNNI    0: u8*s8 and s16*s16 products via maddubs/madd (AVX2)
//              1: via vpdpbusd/vpdpwssd, EVEX 256-bit (AVX512_VNNI + AVX512VL)
//              2: via vpdpbusd/vpdpwssd, VEX (AVX_VNNI)
//   GK_ROWS    weight rows processed together (they share the activation loads)
//
// and includes this file once. Every function carries __attribute__((target(GK_TARGET))) and
// nothing here is compiled with global -m flags, so the binary still starts on any x86-64;
// gguf_simd_kernels.cpp calls a variant only after CPUID says the CPU has it.
//
// Bit-exactness. The kernels reproduce the float operations of the scalar moe::vec_dot (which
// follows ggml's scalar code) exactly, so they agree with it bit for bit, not merely "to
// rounding":
//  * the integer parts (products of quants) are exact in any order;
//  * Q8_0/Q4_0/MXFP4: ggml's scalar loop does `sumf += float(isum_b) * scale_b` block by
//    block. We compute eight blocks' integer sums into the lanes of one vector (hadd tree),
//    form the eight products with the same multiplication order, then add them to sumf
//    serially — the serial adds are a short latency chain per row, and GK_ROWS independent
//    rows hide it;
//  * Q4_K/Q5_K/Q6_K: ggml's scalar loop keeps eight int32 lane sums per super-block, lane =
//    element index % 8, scales them by d into eight float lanes, and adds the lanes up at the
//    end. vpmaddubsw/vpmaddwd/vpdpbusd add neighbouring bytes, so we first permute every
//    32-byte group (weights and activations alike, see perm32) so that the four bytes of
//    dword l are elements l, l+8, l+16, l+24: then each int32 lane holds exactly ggml's lane
//    l, and the float lanes are updated with the same mul-then-add.
// FMA contraction would break that; the project compiles as ISO C++ (-std=c++20, where GCC
// does not contract), and `opaque` additionally hides each product from the optimizer so a
// mul+add pair can never be fused into an FMA.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "cpu/moe/gguf_row_dot.h"
#include "cpu/moe/gguf_simd_kernels.h"
#include "cpu/quants_blocks.h"
#include "formats/ggml_types.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#define GK_FN __attribute__((target(GK_TARGET))) inline

namespace moe::gguf_simd::GK_NS {
namespace {

using namespace moe::quants;

// ---------------------------------------------------------------- small helpers

// Products as ISA-specific primitives: acc + sum of 4 u8*s8 products per int32 lane (callers
// keep each u8*s8 pair sum within int16, which vpmaddubsw needs), and acc + s16 pair products.
GK_FN __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) {
#if GK_VNNI == 1
    return _mm256_dpbusd_epi32(acc, u, s);
#elif GK_VNNI == 2
    return _mm256_dpbusd_avx_epi32(acc, u, s);
#else
    return _mm256_add_epi32(acc,
                            _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

GK_FN __m256i madd_acc(__m256i acc, __m256i a, __m256i b) {
#if GK_VNNI == 1
    return _mm256_dpwssd_epi32(acc, a, b);
#elif GK_VNNI == 2
    return _mm256_dpwssd_avx_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

// Optimization barrier: the value must be materialized as computed (no FMA fusion across it).
GK_FN __m256 opaque(__m256 v) {
    __asm__("" : "+x"(v));
    return v;
}
GK_FN float opaque(float v) {
    __asm__("" : "+x"(v));
    return v;
}

GK_FN float f16(uint16_t h) {
    return _cvtsh_ss(h);  // exact, like moe::f16_to_f32
}

GK_FN uint16_t load_u16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

GK_FN __m256i loadu256(const void* p) {
    return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

GK_FN int hsum128_epi32(__m128i v) {
    v = _mm_add_epi32(v, _mm_unpackhi_epi64(v, v));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 1));
    return _mm_cvtsi128_si32(v);
}

// Reorders the 32 bytes of a group so that dword l holds bytes l, l+8, l+16, l+24 (in that
// order): vpermd gathers dwords {0,2,4,6} / {1,3,5,7} into the two 128-bit halves, then vpshufb
// transposes each half's 4x4 byte matrix.
GK_FN __m256i perm32(__m256i v) {
    const __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    const __m256i tr = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,  //
                                        0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(v, idx), tr);
}

// Software prefetch of the weight stream ahead of the current row group. The rows of a call are
// contiguous, so the R rows being processed span [w, w + R*rb) and the next groups follow; short
// rows (MoE experts: 3..8 super-blocks) restart the hardware prefetcher too often to keep DRAM
// busy from one thread. Kernels prefetch, per block step, the matching slice of the row group
// kPfGroups groups ahead. Those addresses may lie past the end of the weights: prefetches never
// fault, and the address is computed as an integer so no out-of-range pointer is formed.
constexpr int kPfGroups = 2;
GK_FN void prefetch_span(uintptr_t addr, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64)
        _mm_prefetch(reinterpret_cast<const char*>(addr + o), _MM_HINT_T0);
}

// Per-thread scratch for the activation-side precomputation (shared by all rows of a call).
GK_FN uint8_t* scratch(size_t bytes) {
    thread_local std::vector<uint8_t> buf;
    if (buf.size() < bytes + 64) buf.resize(bytes + 64);
    const auto p = reinterpret_cast<uintptr_t>(buf.data());
    return buf.data() + ((64 - (p & 63)) & 63);
}

void check_n(GgmlType t, int64_t n, int64_t block) {
    if (n <= 0 || n % block)
        throw Error("GGUF row dot: length " + std::to_string(n) +
                    " is not a positive multiple of " + std::to_string(block) + " for " +
                    ggml_type_name(t));
}

// ---------------------------------------------------------------- Q8_0 / Q4_0 / MXFP4 (32-blocks)
//
// Ops: kBytes (weight block size), isum (the block's products as 8 int32 partial sums),
// kOffset (the weight value's unsigned offset: isum is sum(u*y), the true sum is
// isum - kOffset*sum(y); sum(y) comes precomputed per activation block), and combine (the
// eight blocks' float products in ggml's operation order).

// The fp16 at xb + r*rb for the eight rows r, as floats.
GK_FN __m256 f16x8(const uint8_t* xb, size_t rb) {
    const __m128i h = _mm_setr_epi16(short(load_u16(xb)), short(load_u16(xb + rb)),
                                     short(load_u16(xb + 2 * rb)), short(load_u16(xb + 3 * rb)),
                                     short(load_u16(xb + 4 * rb)), short(load_u16(xb + 5 * rb)),
                                     short(load_u16(xb + 6 * rb)), short(load_u16(xb + 7 * rb)));
    return _mm256_cvtph_ps(h);
}

struct Q8_0Op {
    static constexpr size_t kBytes = sizeof(BlockQ8_0);
    static constexpr int kOffset = 0;
    // Signed x signed through u8*s8: |x| times y with x's sign (ggml's trick). |x| <= 128 and
    // |y| <= 127 keep vpmaddubsw's pair sums inside int16.
    GK_FN static __m256i isum(const uint8_t* xb, __m256i y) {
        const __m256i x = loadu256(xb + 2);
        return dot_u8s8(_mm256_setzero_si256(), _mm256_abs_epi8(x), _mm256_sign_epi8(y, x));
    }
    // ggml: sumf += float(isum) * (f16(x.d) * f16(y.d))
    GK_FN static __m256 combine(__m256 s, const uint8_t* xb0, int cnt, const float* dy) {
        alignas(16) uint16_t h[8] = {};
        for (int b = 0; b < cnt; ++b) h[b] = load_u16(xb0 + b * kBytes);
        const __m256 dx = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(h)));
        return _mm256_mul_ps(s, _mm256_mul_ps(dx, _mm256_loadu_ps(dy)));
    }
    // The same for one block of eight rows (lanes = rows).
    GK_FN static __m256 combine8(__m256 s, const uint8_t* xb, size_t rb, float dy) {
        return _mm256_mul_ps(s, _mm256_mul_ps(f16x8(xb, rb), _mm256_set1_ps(dy)));
    }
};

// The 16 nibbles of a block as 32 bytes: low nibbles (elements 0..15) in the low half, high
// nibbles (16..31) in the high half — the activation's order.
GK_FN __m256i nibbles32(const uint8_t* qs) {
    const __m256i q =
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
    const __m256i sh = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);
    return _mm256_and_si256(_mm256_srlv_epi32(q, sh), _mm256_set1_epi8(0x0F));
}

struct Q4_0Op {
    static constexpr size_t kBytes = sizeof(BlockQ4_0);
    static constexpr int kOffset = 8;  // value = nibble - 8
    GK_FN static __m256i isum(const uint8_t* xb, __m256i y) {
        return dot_u8s8(_mm256_setzero_si256(), nibbles32(xb + 2), y);
    }
    // ggml: sumf += float(isum) * f16(x.d) * f16(y.d)   (left to right)
    GK_FN static __m256 combine(__m256 s, const uint8_t* xb0, int cnt, const float* dy) {
        alignas(16) uint16_t h[8] = {};
        for (int b = 0; b < cnt; ++b) h[b] = load_u16(xb0 + b * kBytes);
        const __m256 dx = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(h)));
        return _mm256_mul_ps(_mm256_mul_ps(s, dx), _mm256_loadu_ps(dy));
    }
    GK_FN static __m256 combine8(__m256 s, const uint8_t* xb, size_t rb, float dy) {
        return _mm256_mul_ps(_mm256_mul_ps(s, f16x8(xb, rb)), _mm256_set1_ps(dy));
    }
};

struct Mxfp4Op {
    static constexpr size_t kBytes = sizeof(BlockMxfp4);
    static constexpr int kOffset = 12;  // codebook value + 12 is in [0, 24]
    GK_FN static __m256i isum(const uint8_t* xb, __m256i y) {
        const __m256i lut =
            _mm256_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0,  //
                             12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0);
        return dot_u8s8(_mm256_setzero_si256(), _mm256_shuffle_epi8(lut, nibbles32(xb + 1)), y);
    }
    // ggml: d = f16(y.d) * e8m0_half(x.e); sumf += d * float(isum)
    GK_FN static __m256 combine(__m256 s, const uint8_t* xb0, int cnt, const float* dy) {
        alignas(32) float e[8] = {};
        for (int b = 0; b < cnt; ++b) e[b] = e8m0_to_f32_half(xb0[b * kBytes]);
        return _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(dy), _mm256_load_ps(e)), s);
    }
    GK_FN static __m256 combine8(__m256 s, const uint8_t* xb, size_t rb, float dy) {
        // e8m0_to_f32_half on eight exponents: e < 2 ? 0x00200000 << e : (e - 1) << 23
        const __m256i e = _mm256_setr_epi32(xb[0], xb[rb], xb[2 * rb], xb[3 * rb], xb[4 * rb],
                                            xb[5 * rb], xb[6 * rb], xb[7 * rb]);
        const __m256i sub = _mm256_sllv_epi32(_mm256_set1_epi32(0x00200000), e);
        const __m256i norm = _mm256_slli_epi32(_mm256_sub_epi32(e, _mm256_set1_epi32(1)), 23);
        const __m256i small = _mm256_cmpgt_epi32(_mm256_set1_epi32(2), e);
        const __m256 ef = _mm256_castsi256_ps(_mm256_blendv_epi8(norm, sub, small));
        return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(dy), ef), s);
    }
};

// R rows from w (stride rb) against nb activation blocks. dy: f16(y.d) per block; yoff:
// kOffset * sum(y.qs) per block; both padded with zeros to a multiple of 8.
template <int R, class Op>
GK_FN void rows_32(const uint8_t* w, size_t rb, const uint8_t* act, int64_t nb, const float* dy,
                   const int32_t* yoff, float* out) {
    float sumf[R];
    for (int r = 0; r < R; ++r) sumf[r] = 0.0f;
    for (int64_t g = 0; g < nb; g += 8) {
        const int cnt = int(std::min<int64_t>(8, nb - g));
        const uint8_t* wg = w + size_t(g) * Op::kBytes;
        // Eight blocks' int32 partials reduced to one lane each: two levels of vphaddd per
        // pair of pairs, then the 128-bit halves are folded at the end.
        __m256i u[2][R];
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
            __m256i t[2][R];
#pragma GCC unroll 2
            for (int p = 0; p < 2; ++p) {
                __m256i v[2][R];
#pragma GCC unroll 2
                for (int q = 0; q < 2; ++q) {
                    const int b = 4 * h + 2 * p + q;
                    if (b < cnt) {
                        const __m256i y = loadu256(act + size_t(g + b) * sizeof(BlockQ8_0) + 2);
#pragma GCC unroll 4
                        for (int r = 0; r < R; ++r)
                            v[q][r] = Op::isum(wg + r * rb + size_t(b) * Op::kBytes, y);
                    } else {
                        for (int r = 0; r < R; ++r) v[q][r] = _mm256_setzero_si256();
                    }
                }
                for (int r = 0; r < R; ++r) t[p][r] = _mm256_hadd_epi32(v[0][r], v[1][r]);
            }
            for (int r = 0; r < R; ++r) u[h][r] = _mm256_hadd_epi32(t[0][r], t[1][r]);
        }
        const __m256i off = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(yoff + g));
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            __m256i s = _mm256_add_epi32(_mm256_permute2x128_si256(u[0][r], u[1][r], 0x20),
                                         _mm256_permute2x128_si256(u[0][r], u[1][r], 0x31));
            if constexpr (Op::kOffset != 0) s = _mm256_sub_epi32(s, off);
            alignas(32) float prod[8];
            _mm256_store_ps(prod,
                            opaque(Op::combine(_mm256_cvtepi32_ps(s), wg + r * rb, cnt, dy + g)));
            float acc = sumf[r];
            for (int b = 0; b < cnt; ++b) acc += prod[b];
            sumf[r] = acc;
        }
    }
    for (int r = 0; r < R; ++r) out[r] = sumf[r];
}

// Eight rows at a time, lanes = rows: per block, the eight rows' integer sums are reduced into
// one vector and the float update `sumf += product` happens in all eight lanes at once, in
// block order — still ggml's per-row operation order, without the serial scalar adds.
template <class Op>
GK_FN void rows_32x8(const uint8_t* w, size_t rb, const uint8_t* act, int64_t nb, const float* dy,
                     const int32_t* yoff, float* out) {
    __m256 acc = _mm256_setzero_ps();
    const uintptr_t pf = reinterpret_cast<uintptr_t>(w) + size_t(kPfGroups) * 8 * rb;
    for (int64_t b = 0; b < nb; ++b) {
        prefetch_span(pf + size_t(b) * 8 * Op::kBytes, 8 * Op::kBytes);
        const __m256i y = loadu256(act + size_t(b) * sizeof(BlockQ8_0) + 2);
        const uint8_t* xb = w + size_t(b) * Op::kBytes;
        __m256i u[2];
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
            const uint8_t* x = xb + 4 * h * rb;
            const __m256i t0 = _mm256_hadd_epi32(Op::isum(x, y), Op::isum(x + rb, y));
            const __m256i t1 = _mm256_hadd_epi32(Op::isum(x + 2 * rb, y), Op::isum(x + 3 * rb, y));
            u[h] = _mm256_hadd_epi32(t0, t1);
        }
        __m256i s = _mm256_add_epi32(_mm256_permute2x128_si256(u[0], u[1], 0x20),
                                     _mm256_permute2x128_si256(u[0], u[1], 0x31));
        if constexpr (Op::kOffset != 0) s = _mm256_sub_epi32(s, _mm256_set1_epi32(yoff[b]));
        acc = _mm256_add_ps(acc, opaque(Op::combine8(_mm256_cvtepi32_ps(s), xb, rb, dy[b])));
    }
    _mm256_storeu_ps(out, acc);
}

template <class Op>
GK_FN void dot_rows_32(GgmlType t, const void* weight_rows, size_t row_bytes, int64_t rows,
                       const void* act, int64_t n, float* out) {
    check_n(t, n, QK8_0);
    const int64_t nb = n / QK8_0, nbp = (nb + 7) / 8 * 8;
    auto* dy = reinterpret_cast<float*>(scratch(size_t(nbp) * 8));
    auto* yoff = reinterpret_cast<int32_t*>(dy + nbp);
    const auto* y = static_cast<const BlockQ8_0*>(act);
    for (int64_t b = 0; b < nbp; ++b) {
        dy[b] = b < nb ? f16(y[b].d) : 0.0f;
        int s = 0;
        if (b < nb)
            for (int j = 0; j < QK8_0; ++j) s += y[b].qs[j];
        yoff[b] = Op::kOffset * s;
    }
    const auto* w = static_cast<const uint8_t*>(weight_rows);
    const auto* a = static_cast<const uint8_t*>(act);
    int64_t r = 0;
    for (; r + 8 <= rows; r += 8)
        rows_32x8<Op>(w + size_t(r) * row_bytes, row_bytes, a, nb, dy, yoff, out + r);
    for (; r + GK_ROWS <= rows; r += GK_ROWS)
        rows_32<GK_ROWS, Op>(w + size_t(r) * row_bytes, row_bytes, a, nb, dy, yoff, out + r);
    for (; r < rows; ++r)
        rows_32<1, Op>(w + size_t(r) * row_bytes, row_bytes, a, nb, dy, yoff, out + r);
}

// ---------------------------------------------------------------- K-quants against Q8_K
//
// Activation precomputation (once per call): every 32-byte group of y.qs permuted by perm32
// (yp, n bytes), and for Q4_K/Q5_K the pair sums bsums[2j]+bsums[2j+1] that the mins multiply
// (8 int16 per block), for Q6_K the products 32*y as vpmaddubsw pair sums (the 6-bit quants
// are used unsigned, 0..63, and 32*y is subtracted), 16 int16 per 32 elements.

struct KAct {
    const BlockQ8K* y;
    const uint8_t* yp;    // permuted quants, 64-byte aligned
    const __m128i* bs2;   // Q4_K/Q5_K
    const __m256i* m32y;  // Q6_K
};

GK_FN KAct prepare_k(const void* act, int64_t n, bool mins, bool m32) {
    const int64_t nb = n / QK_K;
    const size_t yp_bytes = size_t(n), bs_bytes = mins ? size_t(nb) * 16 : 0;
    uint8_t* s = scratch(yp_bytes + bs_bytes + (m32 ? size_t(n) : 0));
    KAct k{static_cast<const BlockQ8K*>(act), s, nullptr, nullptr};
    auto* bs2 = reinterpret_cast<__m128i*>(s + yp_bytes);
    auto* m32y = reinterpret_cast<__m256i*>(s + yp_bytes + bs_bytes);
    const __m256i k32 = _mm256_set1_epi8(32);
    for (int64_t i = 0; i < nb; ++i) {
        for (int c = 0; c < QK_K / 32; ++c) {
            const __m256i p = perm32(loadu256(k.y[i].qs + 32 * c));
            _mm256_store_si256(reinterpret_cast<__m256i*>(s + i * QK_K + 32 * c), p);
            if (m32) m32y[i * 8 + c] = _mm256_maddubs_epi16(k32, p);
        }
        if (mins) {
            const __m256i b = loadu256(k.y[i].bsums);
            const __m256i pairs = _mm256_hadd_epi16(b, b);  // [0..3 | 4..7] in the low quadwords
            bs2[i] = _mm256_castsi256_si128(_mm256_permute4x64_epi64(pairs, 0x08));
        }
    }
    if (mins) k.bs2 = bs2;
    if (m32) k.m32y = m32y;
    return k;
}

// The 8 six-bit scales and 8 mins of a Q4_K/Q5_K block (get_scale_min_k4) as bytes 0..7 and
// 8..15 (ggml's utmp shuffle).
GK_FN __m128i scales_mins_k4(const uint8_t* sc12) {
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

// vpshufb patterns broadcasting int16 scale j of a [scales8|scales8] vector to all lanes.
GK_FN __m256i scale_bcast(__m256i sc, int j) {
    const __m256i pat = _mm256_set1_epi16(int16_t((2 * j) | ((2 * j + 1) << 8)));
    return _mm256_shuffle_epi8(sc, pat);
}

// Q4_K and Q5_K: `Hi5` adds Q5_K's fifth bit.
template <int R, bool Hi5>
GK_FN void rows_k45(const uint8_t* w, size_t rb, const KAct& a, int64_t nb, float* out) {
    using Block = std::conditional_t<Hi5, BlockQ5K, BlockQ4K>;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m16 = _mm256_set1_epi8(0x10);
    __m256 sums[R];
    float sumf[R];
    for (int r = 0; r < R; ++r) sums[r] = _mm256_setzero_ps(), sumf[r] = 0.0f;
    // Per super-block, prefetch the matching slice of the row group kPfGroups groups ahead.
    const uintptr_t pf = reinterpret_cast<uintptr_t>(w) + size_t(kPfGroups) * R * rb;
    const size_t pf_step = R * sizeof(Block);
    for (int64_t i = 0; i < nb; ++i) {
        prefetch_span(pf + size_t(i) * pf_step, pf_step);
        const float yd = a.y[i].d;
        const Block* x[R];
        __m256i sc[R], acc[R], hb[R];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            x[r] = reinterpret_cast<const Block*>(w + r * rb) + i;
            const __m128i sm = scales_mins_k4(x[r]->scales);
            // ggml: sumf -= f16(dmin) * y.d * float(sum_j bsum_pair[j] * min[j])
            const int sumi =
                hsum128_epi32(_mm_madd_epi16(_mm_cvtepu8_epi16(_mm_srli_si128(sm, 8)), a.bs2[i]));
            const float dmin = f16(x[r]->dmin) * yd;
            sumf[r] -= opaque(dmin * float(sumi));
            sc[r] = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
            acc[r] = _mm256_setzero_si256();
            if constexpr (Hi5) hb[r] = perm32(loadu256(x[r]->qh));
        }
#pragma GCC unroll 4
        for (int c = 0; c < 4; ++c) {
            const __m256i y0 =
                _mm256_load_si256(reinterpret_cast<const __m256i*>(a.yp + i * QK_K + 64 * c));
            const __m256i y1 =
                _mm256_load_si256(reinterpret_cast<const __m256i*>(a.yp + i * QK_K + 64 * c + 32));
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) {
                const __m256i q = perm32(loadu256(x[r]->qs + 32 * c));
                __m256i lo = _mm256_and_si256(q, m4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                if constexpr (Hi5) {
                    // Bits 2c / 2c+1 of qh (after shifting by 2 per group) are the fifth bit.
                    lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(hb[r], 4), m16));
                    hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(hb[r], 3), m16));
                    hb[r] = _mm256_srli_epi16(hb[r], 2);
                }
                acc[r] = madd_acc(acc[r], _mm256_maddubs_epi16(lo, y0), scale_bcast(sc[r], 2 * c));
                acc[r] =
                    madd_acc(acc[r], _mm256_maddubs_epi16(hi, y1), scale_bcast(sc[r], 2 * c + 1));
            }
        }
        // ggml: sums[l] += (f16(x.d) * y.d) * float(aux32[l])
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            const float d = f16(x[r]->d) * yd;
            sums[r] = _mm256_add_ps(
                sums[r], opaque(_mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(acc[r]))));
        }
    }
    for (int r = 0; r < R; ++r) {
        alignas(32) float l[8];
        _mm256_store_ps(l, sums[r]);
        float s = sumf[r];
        for (int j = 0; j < 8; ++j) s += l[j];
        out[r] = s;
    }
}

template <int R>
GK_FN void rows_q6k(const uint8_t* w, size_t rb, const KAct& a, int64_t nb, float* out) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m256 sums[R];
    for (int r = 0; r < R; ++r) sums[r] = _mm256_setzero_ps();
    const uintptr_t pf = reinterpret_cast<uintptr_t>(w) + size_t(kPfGroups) * R * rb;
    const size_t pf_step = R * sizeof(BlockQ6K);
    for (int64_t i = 0; i < nb; ++i) {
        prefetch_span(pf + size_t(i) * pf_step, pf_step);
        const BlockQ6K* x[R];
        __m256i sc[R], acc[R];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            x[r] = reinterpret_cast<const BlockQ6K*>(w + r * rb) + i;
            // int16 scales; dword k = (scale 2k, scale 2k+1) = the two 16-element sub-blocks
            // of 32-group k, matching the (l, l+8 | l+16, l+24) byte pairs of perm32.
            sc[r] = _mm256_cvtepi8_epi16(
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[r]->scales)));
            acc[r] = _mm256_setzero_si256();
        }
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
            __m256i y[4], m32[4];
            for (int t = 0; t < 4; ++t) {
                y[t] = _mm256_load_si256(
                    reinterpret_cast<const __m256i*>(a.yp + i * QK_K + 128 * h + 32 * t));
                m32[t] = a.m32y[i * 8 + 4 * h + t];
            }
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) {
                const __m256i A = perm32(loadu256(x[r]->ql + 64 * h));
                const __m256i B = perm32(loadu256(x[r]->ql + 64 * h + 32));
                const __m256i H = perm32(loadu256(x[r]->qh + 32 * h));
                __m256i e[4];
                e[0] = _mm256_or_si256(_mm256_and_si256(A, m4),
                                       _mm256_and_si256(_mm256_slli_epi16(H, 4), m30));
                e[1] = _mm256_or_si256(_mm256_and_si256(B, m4),
                                       _mm256_and_si256(_mm256_slli_epi16(H, 2), m30));
                e[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(A, 4), m4),
                                       _mm256_and_si256(H, m30));
                e[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(B, 4), m4),
                                       _mm256_and_si256(_mm256_srli_epi16(H, 2), m30));
                // Two accumulator chains per row: a vpdpwssd chain is latency-bound otherwise.
                __m256i acc2 = _mm256_setzero_si256();
#pragma GCC unroll 4
                for (int t = 0; t < 4; ++t) {
                    // (q6 + 32) * y - 32 * y: pair sums within int16 (|.| <= 16002 + 8128)
                    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(e[t], y[t]), m32[t]);
                    const __m256i s =
                        _mm256_permutevar8x32_epi32(sc[r], _mm256_set1_epi32(4 * h + t));
                    if (t % 2)
                        acc2 = madd_acc(acc2, p, s);
                    else
                        acc[r] = madd_acc(acc[r], p, s);
                }
                acc[r] = _mm256_add_epi32(acc[r], acc2);
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            const float d = f16(x[r]->d) * a.y[i].d;
            sums[r] = _mm256_add_ps(
                sums[r], opaque(_mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(acc[r]))));
        }
    }
    for (int r = 0; r < R; ++r) {
        alignas(32) float l[8];
        _mm256_store_ps(l, sums[r]);
        float s = 0.0f;
        for (int j = 0; j < 8; ++j) s += l[j];
        out[r] = s;
    }
}

template <int Kind, int R>  // Kind 4: Q4_K, 5: Q5_K, 6: Q6_K
GK_FN void rows_k(const uint8_t* w, size_t rb, const KAct& a, int64_t nb, float* out) {
    if constexpr (Kind == 6)
        rows_q6k<R>(w, rb, a, nb, out);
    else
        rows_k45<R, Kind == 5>(w, rb, a, nb, out);
}

template <int Kind>
GK_FN void dot_rows_k(const void* weight_rows, size_t row_bytes, int64_t rows, const void* act,
                      int64_t n, float* out) {
    constexpr GgmlType t = Kind == 4 ? GgmlType::Q4_K : Kind == 5 ? GgmlType::Q5_K : GgmlType::Q6_K;
    check_n(t, n, QK_K);
    const int64_t nb = n / QK_K;
    const KAct a = prepare_k(act, n, Kind != 6, Kind == 6);
    const auto* w = static_cast<const uint8_t*>(weight_rows);
    int64_t r = 0;
    for (; r + GK_ROWS <= rows; r += GK_ROWS)
        rows_k<Kind, GK_ROWS>(w + size_t(r) * row_bytes, row_bytes, a, nb, out + r);
    for (; r < rows; ++r) rows_k<Kind, 1>(w + size_t(r) * row_bytes, row_bytes, a, nb, out + r);
}

// ---------------------------------------------------------------- entry points

GK_FN void q8_0_rows(const void* w, size_t rb, int64_t rows, const void* act, int64_t n,
                     float* out) {
    dot_rows_32<Q8_0Op>(GgmlType::Q8_0, w, rb, rows, act, n, out);
}
GK_FN void q4_0_rows(const void* w, size_t rb, int64_t rows, const void* act, int64_t n,
                     float* out) {
    dot_rows_32<Q4_0Op>(GgmlType::Q4_0, w, rb, rows, act, n, out);
}
GK_FN void mxfp4_rows(const void* w, size_t rb, int64_t rows, const void* act, int64_t n,
                      float* out) {
    dot_rows_32<Mxfp4Op>(GgmlType::MXFP4, w, rb, rows, act, n, out);
}
GK_FN void q4_k_rows(const void* w, size_t rb, int64_t rows, const void* act, int64_t n,
                     float* out) {
    dot_rows_k<4>(w, rb, rows, act, n, out);
}
GK_FN void q5_k_rows(const void* w, size_t rb, int64_t rows, const void* act, int64_t n,
                     float* out) {
    dot_rows_k<5>(w, rb, rows, act, n, out);
}
GK_FN void q6_k_rows(const void* w, size_t rb, int64_t rows, const void* act, int64_t n,
                     float* out) {
    dot_rows_k<6>(w, rb, rows, act, n, out);
}

}  // namespace

// This variant's kernel for `type`, or nullptr.
GgufRowDotFn row_dot(GgmlType type) {
    switch (type) {
        case GgmlType::Q8_0:
            return &q8_0_rows;
        case GgmlType::Q4_0:
            return &q4_0_rows;
        case GgmlType::MXFP4:
            return &mxfp4_rows;
        case GgmlType::Q4_K:
            return &q4_k_rows;
        case GgmlType::Q5_K:
            return &q5_k_rows;
        case GgmlType::Q6_K:
            return &q6_k_rows;
        default:
            return nullptr;
    }
}

}  // namespace moe::gguf_simd::GK_NS

#undef GK_FN
