#pragma once
// Qt-free checks of the fused decode kernels (a residual add with the next RMSNorm; q, k and v
// projections in one launch; q/k norms, rotary embedding and cache writes in one launch; decode
// attention over a long cache) against the CPU references of the unfused steps, on fresh random
// inputs. Shared by tst_cuda_kernels and bench/cuda_kernel_check.cpp. CUDA builds only.
#include "decoder_kernel_checks.h"

namespace moe_cuda_test {

inline std::vector<Check> run_fused_kernel_checks(uint32_t seed) {
    std::mt19937 rng(seed);
    CheckList out;
    for (int64_t cols : {7, 2048, 5000}) {  // x += a; y = norm(x)
        const int64_t rows = 3;
        RmsNorm norm;
        norm.weight = random_vec(rng, size_t(cols));
        norm.eps = 1e-5f;
        auto x = random_vec(rng, size_t(rows * cols), 2.0f);
        const auto a = random_vec(rng, size_t(rows * cols), 2.0f);
        auto dx = upload(x), da = upload(a), dw = upload(norm.weight);
        for (size_t i = 0; i < x.size(); ++i) x[i] += a[i];
        std::vector<float> want(x.size());
        norm.apply(x.data(), rows, want.data());
        cuda::DeviceBuffer<float> dy(x.size());
        cuda::add_rms_norm(dx.data(), da.data(), dw.data(), rows, cols, norm.eps, dy.data(),
                           nullptr);
        const std::string shape = " cols=" + std::to_string(cols);
        out.push_back({"add_rms_norm sum" + shape, max_rel(download(dx), x), 0.0});
        out.push_back({"add_rms_norm norm" + shape, max_rel(download(dy), want), 1e-5});
    }
    for (auto [cols, T] : {std::pair<int64_t, int64_t>{2048, 1}, {100, 5}, {1028, 3}}) {
        // three projections of one input (rows of q, k, v of a small GQA layer)
        const int64_t rows[3] = {256, 64, 33};
        const auto x = random_vec(rng, size_t(T * cols));
        auto dx = upload(x);
        std::vector<cuda::DeviceBuffer<uint16_t>> dw;
        std::vector<cuda::DeviceBuffer<float>> dy;
        std::vector<std::vector<float>> want;
        for (int i = 0; i < 3; ++i) {
            auto w = random_vec(rng, size_t(rows[i] * cols));
            std::vector<uint16_t> wb(w.size());
            for (size_t j = 0; j < w.size(); ++j) {
                wb[j] = f32_to_bf16(w[j]);
                w[j] = bf16_to_f32(wb[j]);
            }
            dw.emplace_back(wb.size());
            dw.back().upload(wb.data(), wb.size());
            dy.emplace_back(size_t(T * rows[i]));
            want.push_back(reference_linear(w, x, rows[i], cols, T));
        }
        cuda::linear_f32_acts_3({{dw[0].data(), rows[0], dy[0].data()},
                                 {dw[1].data(), rows[1], dy[1].data()},
                                 {dw[2].data(), rows[2], dy[2].data()}},
                                cols, dx.data(), T, nullptr);
        for (int i = 0; i < 3; ++i)
            out.push_back({"linear_f32_acts_3 part " + std::to_string(i) +
                               " cols=" + std::to_string(cols) + " T=" + std::to_string(T),
                           max_rel(download(dy[size_t(i)]), want[size_t(i)]), 1e-4});
    }
    for (bool norms : {true, false}) {  // per-head norms + rope + cache rows
        for (bool interleaved : {false, true}) {
            const int64_t T = 3, H = 4, KV = 2, D = 64, rotary = norms ? 64 : 32, cap = 9;
            RmsNorm qn, kn;
            qn.weight = random_vec(rng, size_t(D));
            kn.weight = random_vec(rng, size_t(D));
            qn.eps = 1e-6f;
            kn.eps = 1e-5f;
            RotaryEmbedding rope;
            rope.rotary_dim = rotary;
            rope.interleaved = interleaved;
            rope.attention_scaling = 0.9f;
            for (int64_t i = 0; i < rotary / 2; ++i)
                rope.inv_freq.push_back(
                    float(std::pow(10000.0, -2.0 * double(i) / double(rotary))));
            const std::vector<int32_t> pos = {7, 2, 8};
            auto q = random_vec(rng, size_t(T * H * D)), k = random_vec(rng, size_t(T * KV * D));
            const auto v = random_vec(rng, size_t(T * KV * D));
            auto kc = random_vec(rng, size_t(cap * KV * D)),
                 vc = random_vec(rng, size_t(cap * KV * D));
            auto dq = upload(q), dk = upload(k), dv = upload(v), dkc = upload(kc), dvc = upload(vc);
            auto dqn = upload(qn.weight), dkn = upload(kn.weight), df = upload(rope.inv_freq);
            cuda::DeviceBuffer<int32_t> dp(pos.size());
            dp.upload(pos.data(), pos.size());
            if (norms) {
                qn.apply(q.data(), T * H, q.data());
                kn.apply(k.data(), T * KV, k.data());
            }
            for (int64_t t = 0; t < T; ++t) {
                rope.apply(q.data() + t * H * D, H, D, pos[size_t(t)]);
                rope.apply(k.data() + t * KV * D, KV, D, pos[size_t(t)]);
                std::copy(k.begin() + t * KV * D, k.begin() + (t + 1) * KV * D,
                          kc.begin() + pos[size_t(t)] * KV * D);
                std::copy(v.begin() + t * KV * D, v.begin() + (t + 1) * KV * D,
                          vc.begin() + pos[size_t(t)] * KV * D);
            }
            cuda::QkPostShape g;
            g.heads = H;
            g.kv_heads = KV;
            g.head_dim = D;
            if (norms) {
                g.q_norm = dqn.data();
                g.k_norm = dkn.data();
            }
            g.q_eps = qn.eps;
            g.k_eps = kn.eps;
            g.inv_freq = df.data();
            g.rotary_dim = rotary;
            g.interleaved = interleaved;
            g.scaling = rope.attention_scaling;
            cuda::qk_norm_rope_cache(dq.data(), dk.data(), dv.data(), T, g, dp.data(), dkc.data(),
                                     dvc.data(), nullptr);
            const std::string name = std::string("qk_norm_rope_cache") +
                                     (norms ? " norms" : " rope only") +
                                     (interleaved ? " interleaved" : " halves");
            out.push_back({name + ": q", max_rel(download(dq), q), 2e-5});
            out.push_back({name + ": k cache", max_rel(download(dkc), kc), 2e-5});
            out.push_back({name + ": v cache", max_rel(download(dvc), vc), 0.0});
        }
    }
    {  // decode attention over a long cache with 128-wide heads (the thread groups split it)
        AttentionGeometry g;
        g.heads = 8;
        g.kv_heads = 2;
        g.dim_qk = g.dim_v = 128;
        g.scale = 1.0f / std::sqrt(128.0f);
        const int64_t T = 1, pos0 = 700;
        LayerKvCache cache;
        cache.k_width = cache.v_width = g.kv_heads * g.dim_qk;
        cache.k = random_vec(rng, size_t((pos0 + T) * cache.k_width));
        cache.v = random_vec(rng, size_t((pos0 + T) * cache.v_width));
        const auto q = random_vec(rng, size_t(T * g.heads * g.dim_qk));
        std::vector<float> want(size_t(T * g.heads * g.dim_v));
        attend_cached(g, q.data(), T, pos0, cache, nullptr, want.data());
        cuda::AttentionShape a{g.heads, g.kv_heads, g.dim_qk, g.dim_v, g.scale, 0, false};
        auto dq = upload(q), dk = upload(cache.k), dv = upload(cache.v);
        cuda::DeviceBuffer<float> dout(want.size());
        cuda::DeviceBuffer<float> scratch(size_t(cuda::attention_scratch_floats(a, T, pos0)));
        cuda::attend(a, dq.data(), T, pos0, dk.data(), cache.k_width, dv.data(), cache.v_width,
                     nullptr, dout.data(), scratch.data(), nullptr);
        out.push_back({"attention decode ctx=701 dim=128", max_rel(download(dout), want), 1e-5});
    }
    return out;
}

}  // namespace moe_cuda_test
