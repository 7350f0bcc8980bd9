// float_rows.h. The SIMD loops carry function target attributes (internal linkage) and run
// only after CPUID said the CPU has AVX2, FMA and F16C.
#include "cpu/float_rows.h"

#include <immintrin.h>

#include <vector>

#include "core/cpu_info.h"
#include "cpu/moe/gguf_row_dot.h"

// GCC 12 reports the deliberately undefined pass-through operands inside the AVX-512
// intrinsic headers (-W(maybe-)uninitialized): false positives, silenced for this file.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace moe {
namespace {

enum Kind { kF32, kF16, kBF16 };

#define FR_FN __attribute__((target("avx2,fma,f16c")))

template <int K>
FR_FN inline __m256 load8(const uint8_t* p) {
    if constexpr (K == kF32) return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    if constexpr (K == kF16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

template <int K>
inline float scalar_of(const uint8_t* p) {
    if constexpr (K == kF32) {
        float f;
        __builtin_memcpy(&f, p, 4);
        return f;
    }
    uint16_t v;
    __builtin_memcpy(&v, p, 2);
    return K == kF16 ? f16_to_f32(v) : bf16_to_f32(v);
}

FR_FN inline float hsum(__m256 v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

constexpr int64_t bytes_of(int k) {
    return k == kF32 ? 4 : 2;
}

// W of kind WK against activations of kind XK.
template <int WK, int XK>
FR_FN void rows_simd(const uint8_t* w, size_t row_bytes, int64_t rows, const uint8_t* x, int64_t n,
                     float* out) {
    constexpr int64_t we = bytes_of(WK), xe = bytes_of(XK);
    const int64_t n8 = n / 8 * 8;
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                         _mm256_setzero_ps()};
        for (int64_t k = 0; k < n8; k += 8) {
            const __m256 xv = load8<XK>(x + k * xe);
            for (int i = 0; i < 4; ++i)
                acc[i] = _mm256_fmadd_ps(load8<WK>(w + (r + i) * row_bytes + k * we), xv, acc[i]);
        }
        for (int i = 0; i < 4; ++i) {
            float s = hsum(acc[i]);
            for (int64_t k = n8; k < n; ++k)
                s += scalar_of<WK>(w + (r + i) * row_bytes + k * we) * scalar_of<XK>(x + k * xe);
            out[r + i] = s;
        }
    }
    for (; r < rows; ++r) {
        __m256 acc = _mm256_setzero_ps();
        for (int64_t k = 0; k < n8; k += 8)
            acc =
                _mm256_fmadd_ps(load8<WK>(w + r * row_bytes + k * we), load8<XK>(x + k * xe), acc);
        float s = hsum(acc);
        for (int64_t k = n8; k < n; ++k)
            s += scalar_of<WK>(w + r * row_bytes + k * we) * scalar_of<XK>(x + k * xe);
        out[r] = s;
    }
}

template <int WK, int XK>
void rows_scalar(const uint8_t* w, size_t row_bytes, int64_t rows, const uint8_t* x, int64_t n,
                 float* out) {
    for (int64_t r = 0; r < rows; ++r) {
        float s = 0.0f;
        for (int64_t k = 0; k < n; ++k)
            s += scalar_of<WK>(w + r * row_bytes + k * bytes_of(WK)) *
                 scalar_of<XK>(x + k * bytes_of(XK));
        out[r] = s;
    }
}

#define FR512_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

template <int K>
FR512_FN inline __m512 load16(const uint8_t* p, __mmask16 m) {
    if constexpr (K == kF32) return _mm512_maskz_loadu_ps(m, p);
    const __m256i h = _mm256_maskz_loadu_epi16(m, p);
    if constexpr (K == kF16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// One tile of R rows x TT tokens over the whole dot length.
template <int K, int R, int TT>
FR512_FN void tile512(const uint8_t* w, size_t rb, const float* x, int64_t ldx, int64_t n, float* y,
                      int64_t ldy) {
    constexpr int64_t we = bytes_of(K);
    __m512 acc[R][TT];
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_setzero_ps();
    for (int64_t k = 0; k < n; k += 16) {
        const __mmask16 m = n - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - k)) - 1);
        __m512 xv[TT];
        for (int t = 0; t < TT; ++t) xv[t] = _mm512_maskz_loadu_ps(m, x + t * ldx + k);
        for (int r = 0; r < R; ++r) {
            const __m512 wv = load16<K>(w + r * rb + k * we, m);
            for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < TT; ++t) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

template <int K, int R>
FR512_FN void rows512(const uint8_t* w, size_t rb, const float* x, int64_t ldx, int64_t T,
                      int64_t n, float* y, int64_t ldy) {
    int64_t t = 0;
    for (; t + 4 <= T; t += 4) tile512<K, R, 4>(w, rb, x + t * ldx, ldx, n, y + t * ldy, ldy);
    switch (T - t) {
        case 3:
            return tile512<K, R, 3>(w, rb, x + t * ldx, ldx, n, y + t * ldy, ldy);
        case 2:
            return tile512<K, R, 2>(w, rb, x + t * ldx, ldx, n, y + t * ldy, ldy);
        case 1:
            return tile512<K, R, 1>(w, rb, x + t * ldx, ldx, n, y + t * ldy, ldy);
        default:
            return;
    }
}

template <int K>
FR512_FN void gemm512(const uint8_t* w, size_t rb, int64_t rows, const float* x, int64_t ldx,
                      int64_t T, int64_t n, float* y, int64_t ldy) {
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) rows512<K, 4>(w + r * rb, rb, x, ldx, T, n, y + r, ldy);
    for (; r < rows; ++r) rows512<K, 1>(w + r * rb, rb, x, ldx, T, n, y + r, ldy);
}

bool has_avx512f() {
    const CpuFeatures& f = cpu_info().features;
    return f.avx512f && f.avx512bw && f.avx512vl && f.f16c;
}

bool has_avx2_fma_f16c() {
    const CpuFeatures& f = cpu_info().features;
    return f.avx2 && f.fma && f.f16c;
}

template <int WK>
void dot_f32_acts(const void* w, size_t rb, int64_t rows, const float* x, int64_t n, float* out) {
    const auto* wb = static_cast<const uint8_t*>(w);
    const auto* xb = reinterpret_cast<const uint8_t*>(x);
    if (has_avx2_fma_f16c())
        rows_simd<WK, kF32>(wb, rb, rows, xb, n, out);
    else
        rows_scalar<WK, kF32>(wb, rb, rows, xb, n, out);
}

template <int K>
void gguf_rows(const void* w, size_t rb, int64_t rows, const void* act, int64_t n, float* out) {
    rows_simd<K, K>(static_cast<const uint8_t*>(w), rb, rows, static_cast<const uint8_t*>(act), n,
                    out);
}

}  // namespace

void float_rows_dot(DType wt, const void* w, size_t row_bytes, int64_t rows, const float* x,
                    int64_t n, float* out) {
    switch (wt) {
        case DType::F16:
            return dot_f32_acts<kF16>(w, row_bytes, rows, x, n, out);
        case DType::BF16:
            return dot_f32_acts<kBF16>(w, row_bytes, rows, x, n, out);
        default:
            return dot_f32_acts<kF32>(w, row_bytes, rows, x, n, out);
    }
}

void float_rows_gemm(DType wt, const void* w, size_t row_bytes, int64_t rows, const float* x,
                     int64_t ldx, int64_t T, int64_t n, float* y, int64_t ldy) {
    const auto* wb = static_cast<const uint8_t*>(w);
    if (has_avx512f()) {
        switch (wt) {
            case DType::F16:
                return gemm512<kF16>(wb, row_bytes, rows, x, ldx, T, n, y, ldy);
            case DType::BF16:
                return gemm512<kBF16>(wb, row_bytes, rows, x, ldx, T, n, y, ldy);
            default:
                return gemm512<kF32>(wb, row_bytes, rows, x, ldx, T, n, y, ldy);
        }
    }
    std::vector<float> out(static_cast<size_t>(rows));
    for (int64_t t = 0; t < T; ++t) {
        float_rows_dot(wt, w, row_bytes, rows, x + t * ldx, n, out.data());
        for (int64_t r = 0; r < rows; ++r) y[t * ldy + r] = out[size_t(r)];
    }
}

void register_gguf_float_rows() {
    if (!has_avx2_fma_f16c()) return;
    register_gguf_row_dot(GgmlType::F32, {&gguf_rows<kF32>, "avx2"});
    register_gguf_row_dot(GgmlType::F16, {&gguf_rows<kF16>, "avx2"});
    register_gguf_row_dot(GgmlType::BF16, {&gguf_rows<kBF16>, "avx2"});
}

}  // namespace moe

#pragma GCC diagnostic pop
