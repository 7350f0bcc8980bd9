// AMX kernels for prefill: BF16 (tdpbf16ps) and INT8 (tdpbssd, signed x signed, so no
// compensation). The packed weight block is already an AMX "B" tile in VNNI layout: 16
// consecutive 64-byte lines = 32 k (bf16) or 64 k (int8) x 16 output rows. Activations are the
// "A" tiles: 16 tokens x 64 bytes, read from the row-major bf16/int8 activation copy (zero
// padded to 16-token multiples). Each step computes a 32-token x 32-row output with 4 C tiles
// (2 A + 2 B loads for 4 tile products).
//
// Decode-sized batches (T < kAmxMinTokens) and INT4 (whose per-group scales would need a C tile
// store per group) use the AVX-512 kernels: AMX pays off only when a tile has enough tokens.
//
// The tile configuration is per thread, so each call loads it and releases the tiles when done.
// As in kernels_avx512.cpp, code under the target pragma keeps internal linkage.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "cpu/moe/kernels_impl.h"

#pragma GCC push_options
// GCC 12 warns about the deliberately undefined vector inside _mm512_cvtepi32_ps (its
// _mm512_undefined_ps pass-through operand): a false positive in the intrinsic headers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target( \
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16,avx512vnni,amx-tile,amx-int8,amx-bf16")
// clang ignores GCC target pragmas; its own form gives the region the same ISA.
#ifdef __clang__
#pragma clang attribute push(                                                                          \
    __attribute__((target(                                                                             \
        "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16,avx512vnni,amx-tile,amx-int8,amx-bf16"))), \
    apply_to = function)
#endif

namespace moe::kern {

namespace {
struct alignas(64) TileConfig {
    uint8_t palette_id = 1;
    uint8_t start_row = 0;
    uint8_t reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
};
}  // namespace

// tmm0-3: C (fp32/int32, 16 tokens x 16 rows); tmm4-5: A (16 tokens x 64 bytes);
// tmm6-7: B (16 lines x 64 bytes). All tiles are 16 x 64 bytes.
void configure_amx_tiles() {
    TileConfig c;
    for (int i = 0; i < 8; ++i) {
        c.colsb[i] = 64;
        c.rows[i] = 16;
    }
    // GCC treats ldtilecfg as reading only the first byte of its operand and drops the stores
    // to colsb/rows as dead (seen in GCC 12 at -O2: only palette_id was written, and the first
    // tile instruction then raised SIGILL). The barrier makes every store happen.
    asm volatile("" : : "r"(&c) : "memory");
    _tile_loadconfig(&c);
}

namespace {

constexpr int64_t kAmxMinTokens = 8;

// One (up to) 32-token x 32-row step; MT token tiles, NB row blocks. Writes C tiles to `c`.
template <int MT, int NB, bool Int8>
void tile_step(const uint8_t* x, int64_t x_stride, const uint8_t* w0, const uint8_t* w1, int64_t kp,
               float (*c)[256]) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    const int64_t kstep = Int8 ? 64 : 32;  // k per tile product
    const int64_t kbytes = Int8 ? 1 : 2;   // bytes per activation element
    for (int64_t kk = 0; kk < kp; kk += kstep) {
        const int64_t line = Int8 ? kk / 4 : kk / 2;  // first B line of this k step
        // The B tiles come from DRAM: fetch the ones two k steps ahead (tile loads do not
        // trigger the hardware prefetcher across the weight block's pages).
        for (int64_t l = 0; l < 16; ++l) {
            _mm_prefetch(reinterpret_cast<const char*>(w0 + (line + 32 + l) * 64), _MM_HINT_T0);
            if constexpr (NB == 2)
                _mm_prefetch(reinterpret_cast<const char*>(w1 + (line + 32 + l) * 64), _MM_HINT_T0);
        }
        _tile_loadd(4, x + kk * kbytes, x_stride);
        if constexpr (MT == 2) _tile_loadd(5, x + 16 * x_stride + kk * kbytes, x_stride);
        _tile_loadd(6, w0 + line * 64, 64);
        if constexpr (NB == 2) _tile_loadd(7, w1 + line * 64, 64);
        if constexpr (Int8) {
            _tile_dpbssd(0, 4, 6);
            if constexpr (NB == 2) _tile_dpbssd(1, 4, 7);
            if constexpr (MT == 2) _tile_dpbssd(2, 5, 6);
            if constexpr (MT == 2 && NB == 2) _tile_dpbssd(3, 5, 7);
        } else {
            _tile_dpbf16ps(0, 4, 6);
            if constexpr (NB == 2) _tile_dpbf16ps(1, 4, 7);
            if constexpr (MT == 2) _tile_dpbf16ps(2, 5, 6);
            if constexpr (MT == 2 && NB == 2) _tile_dpbf16ps(3, 5, 7);
        }
    }
    _tile_stored(0, c[0], 64);
    if constexpr (NB == 2) _tile_stored(1, c[1], 64);
    if constexpr (MT == 2) _tile_stored(2, c[2], 64);
    if constexpr (MT == 2 && NB == 2) _tile_stored(3, c[3], 64);
}

template <bool Int8>
void amx_matmul(const PackedMatrix& w, const PackedActs& a, int64_t b0, int64_t b1, float* y,
                int64_t ldy) {
    configure_amx_tiles();
    const uint8_t* x = Int8 ? reinterpret_cast<const uint8_t*>(a.i8.data())
                            : reinterpret_cast<const uint8_t*>(a.bf16.data());
    const int64_t x_stride = w.kp * (Int8 ? 1 : 2);
    alignas(64) float c[4][256];
    for (int64_t b = b0; b < b1; b += 2) {
        const int nb = b + 1 < b1 ? 2 : 1;
        const uint8_t* w0 = w.block(b);
        const uint8_t* w1 = nb == 2 ? w.block(b + 1) : w0;
        for (int64_t t0 = 0; t0 < a.T; t0 += 32) {
            const int mt = a.T - t0 > 16 ? 2 : 1;
            const uint8_t* xt = x + t0 * x_stride;
            if (mt == 2 && nb == 2)
                tile_step<2, 2, Int8>(xt, x_stride, w0, w1, w.kp, c);
            else if (mt == 2)
                tile_step<2, 1, Int8>(xt, x_stride, w0, w1, w.kp, c);
            else if (nb == 2)
                tile_step<1, 2, Int8>(xt, x_stride, w0, w1, w.kp, c);
            else
                tile_step<1, 1, Int8>(xt, x_stride, w0, w1, w.kp, c);
            for (int i = 0; i < mt; ++i) {
                for (int jb = 0; jb < nb; ++jb) {
                    const float* ct = c[i * 2 + jb];
                    const int64_t col = (b + jb) * kRowBlock;
                    for (int64_t r = 0; r < 16 && t0 + 16 * i + r < a.T; ++r) {
                        const int64_t t = t0 + 16 * i + r;
                        float* yt = y + t * ldy + col;
                        if constexpr (Int8) {
                            const __m512i acc = _mm512_load_si512(ct + r * 16);
                            const __m512 s = _mm512_mul_ps(_mm512_loadu_ps(w.scale.data() + col),
                                                           _mm512_set1_ps(a.scale[size_t(t)]));
                            _mm512_storeu_ps(yt, _mm512_mul_ps(_mm512_cvtepi32_ps(acc), s));
                        } else {
                            _mm512_storeu_ps(yt, _mm512_load_ps(ct + r * 16));
                        }
                    }
                }
            }
        }
    }
    _tile_release();
}

void bf16_amx(const PackedMatrix& w, const PackedActs& a, int64_t b0, int64_t b1, float* y,
              int64_t ldy) {
    if (a.T < kAmxMinTokens || w.f32_acts) return avx512_kernels().bf16(w, a, b0, b1, y, ldy);
    amx_matmul<false>(w, a, b0, b1, y, ldy);
}

void int8_amx(const PackedMatrix& w, const PackedActs& a, int64_t b0, int64_t b1, float* y,
              int64_t ldy) {
    if (a.T < kAmxMinTokens) return avx512_kernels().int8(w, a, b0, b1, y, ldy);
    amx_matmul<true>(w, a, b0, b1, y, ldy);
}

void int4_amx(const PackedMatrix& w, const PackedActs& a, int64_t b0, int64_t b1, float* y,
              int64_t ldy) {
    avx512_kernels().int4(w, a, b0, b1, y, ldy);
}

void q4k_amx(const PackedMatrix& w, const PackedActs& a, int64_t b0, int64_t b1, float* y,
             int64_t ldy) {
    avx512_kernels().q4k(w, a, b0, b1, y, ldy);
}

}  // namespace
}  // namespace moe::kern

#pragma GCC diagnostic pop
#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options

namespace moe::kern {

const KernelTable& amx_kernels() {
    static const KernelTable t{&bf16_amx, &int8_amx, &int4_amx, &q4k_amx};
    return t;
}

}  // namespace moe::kern
