// Single-thread throughput of the decode (one token) kernels on cache-resident weights: how
// many GB/s of weights one core can multiply when memory is not the limit. Decode reaches the
// DRAM bound only if this rate times the core count is well above the DRAM bandwidth.
//
// Build (no CMake target, like moe_kernel_check.cpp):
//   g++ -O2 -std=c++20 -Iengine/src bench/row_kernel_rate.cpp build/engine/libmoe_engine.a
//       -lpthread [-lnuma] -lpcre2-8 -o row-kernel-rate
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "core/parallel.h"
#include "cpu/moe/gguf_row_dot.h"
#include "cpu/moe/gguf_simd_kernels.h"
#include "cpu/moe/moe_kernels.h"
#include "cpu/quants.h"
#include "formats/ggml_types.h"

using namespace moe;

namespace {

template <class F>
double rate(size_t bytes, F&& f) {
    for (int i = 0; i < 20; ++i) f();
    int iters = 0;
    const auto t0 = std::chrono::steady_clock::now();
    double s = 0;
    while (s < 0.3) {
        for (int i = 0; i < 50; ++i) f();
        iters += 50;
        s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    return double(bytes) * iters / s / 1e9;
}

}  // namespace

int main() {
    register_gguf_simd_kernels();
    set_parallel_threads(1);
    const int64_t R = 384;
    std::mt19937 rng(1);
    std::normal_distribution<float> nd;
    for (int64_t K : {768, 2048}) {
        std::vector<float> w(static_cast<size_t>(R * K)), x(static_cast<size_t>(K));
        for (float& v : w) v = nd(rng) * 0.1f;
        for (float& v : x) v = nd(rng);
        for (GgmlType t :
             {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::MXFP4}) {
            const size_t rb = ggml_row_size(t, K);
            std::vector<uint8_t> q(rb * size_t(R));
            for (int64_t r = 0; r < R; ++r)
                quantize_row(t, &w[size_t(r * K)], &q[size_t(r) * rb], K);
            const GgmlType at = vec_dot_type(t);
            std::vector<uint8_t> qa(ggml_row_size(at, K));
            quantize_activation(at, x.data(), qa.data(), K);
            std::vector<float> out(static_cast<size_t>(R));
            const GgufRowDot& dot = gguf_row_dot(t);
            const double gbs =
                rate(q.size(), [&] { dot.dot_rows(q.data(), rb, R, qa.data(), K, out.data()); });
            std::printf("K=%-5lld %-6s %6.1f GB/s per core (%zu KiB)\n", (long long)K,
                        ggml_type_name(t).c_str(), gbs, q.size() / 1024);
        }
        WeightMatrix m;
        m.dtype = DType::F32;
        m.rows = R;
        m.cols = K;
        m.data = w.data();
        const struct {
            const char* name;
            PackOptions opt;
        } fmts[] = {{"bf16", {PackedFormat::BF16, 32, false, false}},
                    {"bf16-exact", {PackedFormat::BF16, 32, false, false, true}},
                    {"int8", {PackedFormat::INT8, 32, false, false}},
                    {"int4", {PackedFormat::INT4, 32, false, false}},
                    {"q4k (Q4_K repacked)", {PackedFormat::Q4K, 32, false, false}}};
        std::vector<uint8_t> q4(ggml_row_size(GgmlType::Q4_K, K) * size_t(R));
        for (int64_t r = 0; r < R; ++r)
            quantize_row(GgmlType::Q4_K, &w[size_t(r * K)],
                         &q4[size_t(r) * ggml_row_size(GgmlType::Q4_K, K)], K);
        WeightMatrix m4 = m;
        m4.ggml = true;
        m4.ggml_type = GgmlType::Q4_K;
        m4.data = q4.data();
        for (const auto& f : fmts) {
            const PackedMatrix p = pack_matrix(f.opt.format == PackedFormat::Q4K ? m4 : m, f.opt);
            PackedActs a;
            prepare_acts(p, x.data(), 1, K, a);
            std::vector<float> y(size_t(p.blocks * kRowBlock));
            const KernelVariant v = default_kernel_variant();
            const double gbs =
                rate(p.bytes(), [&] { packed_matmul(v, p, a, 0, p.blocks, y.data(), 0); });
            std::printf("K=%-5lld %-10s %6.1f GB/s per core (%s, %zu KiB)\n", (long long)K, f.name,
                        gbs, kernel_variant_name(v), p.bytes() / 1024);
        }
    }
    return 0;
}
