// Register-only peak loops (compute_peak.h). Each variant's loop sits under its own target
// pragma with internal linkage, as the kernels do, and is only called after CPUID allowed it.
#include "cpu/moe/compute_peak.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "core/parallel.h"
#include "core/worker_pool.h"
#include "cpu/moe/kernels_impl.h"

namespace moe {
namespace {

constexpr int64_t kIters = 1 << 16;
std::atomic<uint64_t> g_sink{0};  // keeps the loops' results alive

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
// clang ignores GCC target pragmas; its own form gives the region the same ISA.
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#endif
double avx2_loop(PeakOp op) {
    const bool int8 = op == PeakOp::Int8;
    // 10 independent accumulators cover the FMA latency (4-5 cycles) on two ports.
    if (int8) {
        __m256i acc[10];
        const __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(5);
        for (auto& x : acc) x = _mm256_setzero_si256();
        for (int64_t i = 0; i < kIters; ++i)
            for (auto& x : acc) x = _mm256_add_epi16(x, _mm256_maddubs_epi16(a, b));
        uint64_t s = 0;
        for (auto& x : acc) s += uint64_t(_mm256_extract_epi16(x, 0));
        g_sink += s;
        return double(kIters) * 10 * 32 * 2;  // 32 byte products per instruction
    }
    __m256 acc[10];
    const __m256 a = _mm256_set1_ps(1.0001f), b = _mm256_set1_ps(0.9999f);
    for (auto& x : acc) x = _mm256_setzero_ps();
    for (int64_t i = 0; i < kIters; ++i)
        for (auto& x : acc) x = _mm256_fmadd_ps(a, b, x);
    float s = 0;
    for (auto& x : acc) s += _mm256_cvtss_f32(x);
    g_sink += uint64_t(s);
    return double(kIters) * 10 * 8 * 2;
}
#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16,avx512vnni")
#ifdef __clang__
#pragma clang attribute push(                                                                 \
    __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16,avx512vnni"))), \
    apply_to = function)
#endif
double avx512_loop(PeakOp op) {
    if (op == PeakOp::F32) {
        __m512 acc[10];
        const __m512 a = _mm512_set1_ps(1.0001f), b = _mm512_set1_ps(0.9999f);
        for (auto& x : acc) x = _mm512_setzero_ps();
        for (int64_t i = 0; i < kIters; ++i)
            for (auto& x : acc) x = _mm512_fmadd_ps(a, b, x);
        float s = 0;
        for (auto& x : acc) s += _mm512_cvtss_f32(x);
        g_sink += uint64_t(s);
        return double(kIters) * 10 * 16 * 2;
    }
    if (op == PeakOp::Int8) {
        __m512i acc[10];
        const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(5);
        for (auto& x : acc) x = _mm512_setzero_si512();
        for (int64_t i = 0; i < kIters; ++i)
            for (auto& x : acc) x = _mm512_dpbusd_epi32(x, a, b);
        uint64_t s = 0;
        alignas(64) int32_t lanes[16];
        for (auto& x : acc) {
            _mm512_store_si512(lanes, x);
            s += uint64_t(lanes[0]);
        }
        g_sink += s;
        return double(kIters) * 10 * 64 * 2;
    }
    __m512 acc[10];
    const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3f80);
    for (auto& x : acc) x = _mm512_setzero_ps();
    for (int64_t i = 0; i < kIters; ++i)
        for (auto& x : acc) x = _mm512_dpbf16_ps(x, a, b);
    float s = 0;
    for (auto& x : acc) s += _mm512_cvtss_f32(x);
    g_sink += uint64_t(s);
    return double(kIters) * 10 * 32 * 2;
}
#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target( \
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16,avx512vnni,amx-tile,amx-int8,amx-bf16")
#ifdef __clang__
#pragma clang attribute push(                                                                          \
    __attribute__((target(                                                                             \
        "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16,avx512vnni,amx-tile,amx-int8,amx-bf16"))), \
    apply_to = function)
#endif
double amx_loop(PeakOp op) {
    const bool int8 = op == PeakOp::Int8;
    kern::configure_amx_tiles();  // the kernels' layout: 8 tiles of 16 x 64 bytes
    alignas(64) static const uint8_t src[16 * 64] = {};
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, src, 64);
    _tile_loadd(5, src, 64);
    _tile_loadd(6, src, 64);
    _tile_loadd(7, src, 64);
    // The kernels' step: 2 A x 2 B tiles into 4 C tiles.
    for (int64_t i = 0; i < kIters / 4; ++i) {
        if (int8) {
            _tile_dpbssd(0, 4, 6);
            _tile_dpbssd(1, 4, 7);
            _tile_dpbssd(2, 5, 6);
            _tile_dpbssd(3, 5, 7);
        } else {
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
    }
    alignas(64) int32_t out[256];
    _tile_stored(0, out, 64);
    _tile_release();
    g_sink += uint64_t(out[0]);
    // 16 x 16 outputs x 32 bf16 (64 int8) products per tile instruction.
    return double(kIters / 4) * 4 * 16 * 16 * (int8 ? 64 : 32) * 2;
}
#ifdef __clang__
#pragma clang attribute pop
#endif
#pragma GCC pop_options

}  // namespace

ComputePeak measure_compute_peak(KernelVariant v, PeakOp op, int threads) {
    ComputePeak p;
    const bool int8 = op == PeakOp::Int8, f32 = op == PeakOp::F32;
    if (v == KernelVariant::Amx && f32) v = KernelVariant::Avx512;
    switch (v) {
        case KernelVariant::Scalar:
            p.instruction = "scalar (not measured)";
            return p;
        case KernelVariant::Avx2:
            p.instruction = int8 ? "vpmaddubsw ymm" : "vfmadd231ps ymm";
            if (op == PeakOp::Bf16) op = PeakOp::F32;
            break;
        case KernelVariant::Avx512:
            p.instruction = int8 ? "vpdpbusd zmm" : f32 ? "vfmadd231ps zmm" : "vdpbf16ps zmm";
            break;
        case KernelVariant::Amx:
            p.instruction = int8 ? "tdpbssd" : "tdpbf16ps";
            break;
    }
    if (!kernel_variant_supported(v)) return {};
    if (threads <= 0) threads = parallel_threads();
    auto loop = [&] {
        return v == KernelVariant::Amx      ? amx_loop(op)
               : v == KernelVariant::Avx512 ? avx512_loop(op)
                                            : avx2_loop(op);
    };
    // Best of a few rounds; each round every thread runs the loop a few times (the first
    // round also brings the cores up to their loaded clock).
    double best = 0.0;
    for (int round = 0; round < 4; ++round) {
        std::atomic<int64_t> ops{0};
        const auto t0 = std::chrono::steady_clock::now();
        default_worker_pool().parallel_for(
            threads,
            [&](int64_t b, int64_t e, int) {
                double n = 0;
                for (int64_t i = b; i < e; ++i)
                    for (int rep = 0; rep < 8; ++rep) n += loop();
                ops += int64_t(n);
            },
            1);
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, double(ops.load()) / s / 1e12);
    }
    p.tflops = best;
    return p;
}

}  // namespace moe
