#include "cpu/membw.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "core/parallel.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define MOE_MEMBW_AVX2 1
#endif

namespace moe {

namespace {

#ifdef MOE_MEMBW_AVX2
// 256-bit loads, four independent accumulators: enough outstanding loads to saturate DRAM.
__attribute__((target("avx2"))) uint64_t stream_avx2(const uint8_t* p, size_t n) {
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a = _mm256_xor_si256(a, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
        b = _mm256_xor_si256(b, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
        c = _mm256_xor_si256(c, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
        d = _mm256_xor_si256(d, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
    }
    const __m256i x = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
    return uint64_t(_mm256_extract_epi64(x, 0) ^ _mm256_extract_epi64(x, 3));
}
#endif

uint64_t stream_scalar(const uint8_t* p, size_t n) {
    const auto* q = reinterpret_cast<const uint64_t*>(p);
    uint64_t a = 0, b = 0;
    for (size_t i = 0; i + 2 <= n / 8; i += 2) {
        a ^= q[i];
        b ^= q[i + 1];
    }
    return a ^ b;
}

}  // namespace

MemoryBandwidth measure_dram_read(int threads, size_t bytes, int repeats) {
    MemoryBandwidth r;
    r.threads = threads > 0 ? threads : parallel_threads();
    const size_t chunk = (bytes / size_t(r.threads)) & ~size_t(4095);
    r.bytes = chunk * size_t(r.threads);
    auto* raw = static_cast<uint8_t*>(::operator new(r.bytes + 64, std::align_val_t(64)));
    std::unique_ptr<uint8_t, void (*)(uint8_t*)> buf(
        raw, [](uint8_t* p) { ::operator delete(p, std::align_val_t(64)); });
    // First touch by the thread that will read the part (NUMA-local pages).
    std::vector<std::thread> ts;
    for (int t = 0; t < r.threads; ++t) {
        ts.emplace_back([&, t] { std::memset(raw + size_t(t) * chunk, t + 1, chunk); });
    }
    for (auto& t : ts) t.join();
#ifdef MOE_MEMBW_AVX2
    const bool avx2 = __builtin_cpu_supports("avx2");
#endif
    std::atomic<uint64_t> sink{0};
    for (int rep = 0; rep < repeats; ++rep) {
        std::atomic<int> ready{0};
        std::atomic<bool> go{false};
        std::vector<std::thread> readers;
        for (int t = 0; t < r.threads; ++t) {
            readers.emplace_back([&, t] {
                ready.fetch_add(1);
                while (!go.load(std::memory_order_acquire)) {
                }
                const uint8_t* p = raw + size_t(t) * chunk;
#ifdef MOE_MEMBW_AVX2
                sink.fetch_xor(avx2 ? stream_avx2(p, chunk) : stream_scalar(p, chunk));
#else
                sink.fetch_xor(stream_scalar(p, chunk));
#endif
            });
        }
        while (ready.load() < r.threads) {
        }
        const auto t0 = std::chrono::steady_clock::now();
        go.store(true, std::memory_order_release);
        for (auto& t : readers) t.join();
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        r.read_gb_per_s = std::max(r.read_gb_per_s, double(r.bytes) / s / 1e9);
    }
    if (sink.load() == 0x5eed) r.read_gb_per_s += 0.0;  // keep the reads observable
    return r;
}

}  // namespace moe
