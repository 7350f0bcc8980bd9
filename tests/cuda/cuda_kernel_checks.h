#pragma once
// Qt-free checks of the CUDA kernels against their CPU references on fresh random inputs and
// odd shapes, shared by tst_cuda_kernels (Qt Test, skipped without a GPU) and
// bench/cuda_kernel_check.cpp (run on the GPU machine, which has no Qt). CUDA builds only.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "cpu/moe/fused_moe.h"
#include "cuda/attention.h"
#include "cuda/basic_kernels.h"
#include "cuda/device_memory.h"
#include "cuda/linear.h"
#include "model/attention.h"
#include "model/kv_cache.h"
#include "model/norm.h"
#include "model/rope.h"

namespace moe_cuda_test {

using namespace moe;

struct Check {
    std::string name;
    double error = 0;  // max |gpu - cpu| / max(|cpu|, 1)
    double bar = 0;
    bool ok() const { return error <= bar; }
};

inline std::vector<float> random_vec(std::mt19937& rng, size_t n, float scale = 1.0f) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (float& f : v) f = d(rng);
    return v;
}

inline double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
    double e = 0;
    for (size_t i = 0; i < a.size(); ++i)
        e = std::max(e, std::fabs(double(a[i]) - b[i]) / std::max(1.0, std::fabs(double(b[i]))));
    return e;
}

inline std::vector<float> download(const cuda::DeviceBuffer<float>& d) {
    std::vector<float> h(d.size());
    d.download(h.data(), h.size());
    MOE_CUDA(cudaDeviceSynchronize());
    return h;
}

inline cuda::DeviceBuffer<float> upload(const std::vector<float>& h) {
    cuda::DeviceBuffer<float> d(h.size());
    d.upload(h.data(), h.size());
    return d;
}

// A list of checks that also records, after each one, a runtime error left pending by it
// (one that no checked call reported): it would otherwise be blamed on a later launch.
struct CheckList : std::vector<Check> {
    void push_back(Check c) {
        const std::string name = c.name;
        std::vector<Check>::push_back(std::move(c));
        if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess)
            std::vector<Check>::push_back(
                {std::string("runtime error left pending by ") + name + ": " + cudaGetErrorName(e),
                 1.0, 0.0});
    }
};

inline std::vector<Check> run_basic_kernel_checks(uint32_t seed) {
    std::mt19937 rng(seed);
    CheckList out;
    for (int64_t cols : {1, 7, 96, 2048, 7168}) {
        const int64_t rows = 5;
        RmsNorm norm;
        norm.weight = random_vec(rng, static_cast<size_t>(cols));
        norm.eps = 1e-6f;
        const auto x = random_vec(rng, static_cast<size_t>(rows * cols), 3.0f);
        std::vector<float> want(x.size());
        norm.apply(x.data(), rows, want.data());
        auto dx = upload(x), dw = upload(norm.weight);
        cuda::DeviceBuffer<float> dy(x.size());
        cuda::rms_norm(dx.data(), dw.data(), rows, cols, norm.eps, dy.data(), nullptr);
        out.push_back({"rms_norm cols=" + std::to_string(cols), max_rel(download(dy), want), 1e-5});
    }
    for (bool clamped : {false, true}) {
        const int64_t n = 10007;
        const auto g = random_vec(rng, static_cast<size_t>(n), 4.0f),
                   u = random_vec(rng, static_cast<size_t>(n), 4.0f);
        GluActivation act;
        act.kind = clamped ? GluActivation::Kind::ClampedSwiGlu : GluActivation::Kind::SiluGlu;
        std::vector<float> want(static_cast<size_t>(n));
        act.apply(g.data(), u.data(), want.data(), n);
        auto dg = upload(g), du = upload(u);
        cuda::DeviceBuffer<float> dh(static_cast<size_t>(n));
        cuda::glu(dg.data(), du.data(), n, clamped, act.alpha, act.limit, dh.data(), nullptr);
        out.push_back({std::string("glu ") + (clamped ? "clamped" : "silu"),
                       max_rel(download(dh), want), 1e-5});
    }
    for (bool interleaved : {false, true}) {
        for (int64_t rotary : {64, 32}) {  // full and partial rotary of a 64-wide head
            const int64_t tokens = 9, heads = 3, stride = 64;
            RotaryEmbedding rope;
            rope.rotary_dim = rotary;
            rope.interleaved = interleaved;
            rope.attention_scaling = 1.1f;
            for (int64_t i = 0; i < rotary / 2; ++i)
                rope.inv_freq.push_back(
                    float(std::pow(10000.0, -2.0 * double(i) / double(rotary))));
            std::vector<int32_t> pos(static_cast<size_t>(tokens));
            for (int64_t t = 0; t < tokens; ++t)
                pos[static_cast<size_t>(t)] = int32_t(t * 977 % 4093);
            const auto x = random_vec(rng, static_cast<size_t>(tokens * heads * stride));
            std::vector<float> want = x;
            for (int64_t t = 0; t < tokens; ++t)
                rope.apply(want.data() + t * heads * stride, heads, stride,
                           pos[static_cast<size_t>(t)]);
            auto dx = upload(x), df = upload(rope.inv_freq);
            cuda::DeviceBuffer<int32_t> dp(pos.size());
            dp.upload(pos.data(), pos.size());
            cuda::rope(dx.data(), tokens, heads, stride, dp.data(), df.data(), rotary, interleaved,
                       rope.attention_scaling, nullptr);
            // Angles up to ~4000 rad: cos/sin of a float argument differ by a few ulp between
            // libm and CUDA's implementations.
            out.push_back({"rope " + std::string(interleaved ? "interleaved" : "halves") +
                               " rotary=" + std::to_string(rotary),
                           max_rel(download(dx), want), 2e-5});
        }
    }
    for (bool bf16 : {false, true}) {
        const int64_t vocab = 50, cols = 133, tokens = 6;
        const auto table = random_vec(rng, static_cast<size_t>(vocab * cols));
        std::vector<uint16_t> table16(table.size());
        for (size_t i = 0; i < table.size(); ++i) table16[i] = f32_to_bf16(table[i]);
        const std::vector<int32_t> ids{3, 49, 0, 3, 17, 8};
        std::vector<float> want(static_cast<size_t>(tokens * cols));
        for (int64_t t = 0; t < tokens; ++t) {
            for (int64_t c = 0; c < cols; ++c) {
                const size_t src = static_cast<size_t>(ids[static_cast<size_t>(t)] * cols + c);
                want[static_cast<size_t>(t * cols + c)] =
                    bf16 ? bf16_to_f32(table16[src]) : table[src];
            }
        }
        cuda::DeviceBuffer<float> dt32 = upload(table);
        cuda::DeviceBuffer<uint16_t> dt16(table16.size());
        dt16.upload(table16.data(), table16.size());
        cuda::DeviceBuffer<int32_t> di(ids.size());
        di.upload(ids.data(), ids.size());
        cuda::DeviceBuffer<float> dout(want.size());
        cuda::embedding_rows(bf16 ? static_cast<const void*>(dt16.data()) : dt32.data(), bf16,
                             di.data(), tokens, cols, dout.data(), nullptr);
        out.push_back({std::string("embedding ") + (bf16 ? "bf16" : "f32"),
                       max_rel(download(dout), want), 0.0});
    }
    {
        const auto a = random_vec(rng, 1001), b = random_vec(rng, 1001);
        std::vector<float> want(a.size());
        for (size_t i = 0; i < a.size(); ++i) want[i] = a[i] + b[i];
        auto da = upload(a), db = upload(b);
        cuda::add_in_place(da.data(), db.data(), int64_t(a.size()), nullptr);
        out.push_back({"add_in_place", max_rel(download(da), want), 0.0});
    }
    // cuBLAS linear layers: against the CPU product of the same bf16-rounded weights and
    // activations (only fp32 summation order differs), and against the unrounded fp32 product
    // (the bf16 rounding of both, ~1e-2 at most).
    {
        cuda::Blas blas;
        cuda::DeviceBuffer<uint16_t> scratch;
        for (auto [rows, cols, T] :
             {std::tuple<int64_t, int64_t, int64_t>{64, 128, 1}, {300, 1000, 7}, {2048, 768, 33}}) {
            const auto w = random_vec(rng, static_cast<size_t>(rows * cols), 0.05f);
            const auto x = random_vec(rng, static_cast<size_t>(T * cols));
            WeightMatrix m;
            m.dtype = DType::F32;
            m.rows = rows;
            m.cols = cols;
            m.data = w.data();
            const cuda::GpuMatrix g = cuda::upload_bf16(m);
            auto dx = upload(x);
            cuda::DeviceBuffer<float> dy(static_cast<size_t>(T * rows));
            cuda::linear(blas, g, dx.data(), T, dy.data(), scratch, nullptr);
            const auto got = download(dy);
            std::vector<float> want(got.size()), want32(got.size());
            auto r16 = [](float v) { return bf16_to_f32(f32_to_bf16(v)); };
            for (int64_t t = 0; t < T; ++t) {
                for (int64_t r = 0; r < rows; ++r) {
                    double a = 0, b = 0;
                    for (int64_t c = 0; c < cols; ++c) {
                        const float wv = w[static_cast<size_t>(r * cols + c)];
                        const float xv = x[static_cast<size_t>(t * cols + c)];
                        a += double(r16(wv)) * r16(xv);
                        b += double(wv) * xv;
                    }
                    want[static_cast<size_t>(t * rows + r)] = float(a);
                    want32[static_cast<size_t>(t * rows + r)] = float(b);
                }
            }
            const std::string shape =
                std::to_string(rows) + "x" + std::to_string(cols) + " T=" + std::to_string(T);
            out.push_back({"linear bf16 " + shape, max_rel(got, want), 1e-4});
            out.push_back({"linear bf16 vs fp32 " + shape, max_rel(got, want32), 3e-2});
        }
    }
    // Attention over a cache: GQA with a causal prefill chunk after earlier positions, with a
    // sliding window and sinks, and MLA's values-in-keys rows; against attend_cached.
    {
        struct Case {
            const char* name;
            int64_t heads, kv_heads, dim_qk, dim_v, window;
            bool sinks, mla;
        };
        const Case cases[] = {{"gqa", 8, 2, 64, 64, 0, false, false},
                              {"gqa window+sinks", 8, 4, 64, 64, 7, true, false},
                              {"mla values-in-keys", 4, 1, 96, 64, 0, false, true},
                              {"gqa 128", 8, 2, 128, 128, 0, false, false},
                              {"mla absorbed 576/512", 2, 1, 576, 512, 0, true, true}};
        for (const Case& c : cases) {
            for (auto [T, pos0] :
                 {std::pair<int64_t, int64_t>{1, 40}, {6, 20}, {45, 0}, {70, 33}}) {
                AttentionGeometry g;
                g.heads = c.heads;
                g.kv_heads = c.kv_heads;
                g.dim_qk = c.dim_qk;
                g.dim_v = c.dim_v;
                g.scale = 1.0f / std::sqrt(float(c.dim_qk));
                g.sliding_window = c.window;
                g.values_in_keys = c.mla;
                LayerKvCache cache;
                cache.k_width = c.kv_heads * c.dim_qk;
                cache.v_width = c.mla ? 0 : c.kv_heads * c.dim_v;
                const int64_t ctx = pos0 + T;
                cache.k = random_vec(rng, static_cast<size_t>(ctx * cache.k_width));
                cache.v = random_vec(rng, static_cast<size_t>(ctx * cache.v_width));
                const auto q = random_vec(rng, static_cast<size_t>(T * c.heads * c.dim_qk));
                const auto sinks = random_vec(rng, static_cast<size_t>(c.heads));
                std::vector<float> want(static_cast<size_t>(T * c.heads * c.dim_v));
                attend_cached(g, q.data(), T, pos0, cache, c.sinks ? sinks.data() : nullptr,
                              want.data());
                cuda::AttentionShape a{c.heads, c.kv_heads, c.dim_qk, c.dim_v,
                                       g.scale, c.window,   c.mla};
                auto dq = upload(q), dk = upload(cache.k), ds = upload(sinks);
                cuda::DeviceBuffer<float> dv = upload(c.mla ? std::vector<float>(1) : cache.v);
                cuda::DeviceBuffer<float> dout(want.size());
                cuda::DeviceBuffer<float> scratch(
                    static_cast<size_t>(cuda::attention_scratch_floats(a, T, pos0)));
                cuda::attend(a, dq.data(), T, pos0, dk.data(), cache.k_width, dv.data(),
                             cache.v_width, c.sinks ? ds.data() : nullptr, dout.data(),
                             scratch.data(), nullptr);
                out.push_back({std::string("attention ") + c.name + " T=" + std::to_string(T),
                               max_rel(download(dout), want), 1e-5});
                // The tiled prompt kernel, token t at position pos0 + t (device-side list).
                std::vector<int32_t> pos(static_cast<size_t>(T));
                for (int64_t t = 0; t < T; ++t) pos[size_t(t)] = int32_t(pos0 + t);
                cuda::DeviceBuffer<int32_t> dpos(pos.size());
                dpos.upload(pos.data(), pos.size(), nullptr);
                cuda::DeviceBuffer<float> tout(want.size());
                cuda::attend_tiled_at(a, dq.data(), T, dpos.data(), dk.data(), cache.k_width,
                                      dv.data(), cache.v_width, c.sinks ? ds.data() : nullptr,
                                      tout.data(), nullptr);
                out.push_back({std::string("tiled attention ") + c.name +
                                   " T=" + std::to_string(T) + " pos0=" + std::to_string(pos0),
                               max_rel(download(tout), want), 1e-5});
            }
        }
    }
    // A failing CUDA call surfaces as a moe::Error that names the call.
    {
        bool named = false;
        try {
            MOE_CUDA(cudaMemcpy(nullptr, nullptr, 16, cudaMemcpyDeviceToHost));
        } catch (const Error& e) {
            named = std::string(e.what()).find("cudaMemcpy") != std::string::npos;
        }
        out.push_back({"errors become moe::Error", named ? 0.0 : 1.0, 0.0});
    }
    return out;
}

}  // namespace moe_cuda_test
