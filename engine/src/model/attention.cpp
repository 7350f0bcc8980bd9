#include "model/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/dtype.h"
#include "core/error.h"
#include "core/parallel.h"

namespace moe {

namespace {

inline float round_f16(float v) {
    return f16_to_f32(f32_to_f16(v));
}

// ggml_compute_forward_flash_attn_ext_f16_one_chunk for F16 K/V, one query row.
void attend_one_llama_cpp(const AttentionGeometry& g, const float* qh, int64_t first, int64_t n,
                          int64_t kvh, const LayerKvCache& cache, float sink, bool has_sink,
                          float* out) {
    std::vector<float> q16(static_cast<size_t>(g.dim_qk)), acc(static_cast<size_t>(g.dim_v), 0.0f);
    for (int64_t d = 0; d < g.dim_qk; ++d) q16[size_t(d)] = round_f16(qh[d]);
    float S = 0.0f, M = -INFINITY;
    for (int64_t j = 0; j < n; ++j) {
        const float* kj = cache.k_at(first + j) + kvh * g.dim_qk;
        double dot = 0.0;
        for (int64_t d = 0; d < g.dim_qk; ++d) dot += double(kj[d]) * double(q16[size_t(d)]);
        const float s = float(dot) * g.scale;
        const float* vj =
            g.values_in_keys ? cache.k_at(first + j) : cache.v_at(first + j) + kvh * g.dim_v;
        float ms = 1.0f, vs = 1.0f;
        if (s > M) {
            const float old = M;
            M = s;
            ms = std::exp(old - M);
            for (float& a : acc) a = round_f16(a * ms);
        } else {
            vs = std::exp(s - M);
        }
        for (int64_t d = 0; d < g.dim_v; ++d)
            acc[size_t(d)] = round_f16(acc[size_t(d)] + vj[d] * vs);
        S = S * ms + vs;
    }
    if (has_sink) {
        float ms = 1.0f, vs = 1.0f;
        if (sink > M) {
            ms = std::exp(M - sink);
            for (float& a : acc) a *= ms;
        } else {
            vs = std::exp(sink - M);
        }
        S = S * ms + vs;
    }
    const float inv = S == 0.0f ? 0.0f : 1.0f / S;
    for (int64_t d = 0; d < g.dim_v; ++d) out[d] = acc[size_t(d)] * inv;
}

}  // namespace

void attend_cached(const AttentionGeometry& g, const float* q, int64_t T, int64_t pos0,
                   const LayerKvCache& cache, const float* sinks, float* out) {
    const int64_t group = g.heads / g.kv_heads;
    parallel_for(T * g.heads, 1, [&](int64_t i0, int64_t i1) {
        std::vector<float> p;
        std::vector<float> acc(size_t(g.dim_v));
        for (int64_t i = i0; i < i1; ++i) {
            const int64_t t = i / g.heads, h = i % g.heads, kvh = h / group;
            const int64_t pos = pos0 + t;
            const int64_t first =
                g.sliding_window > 0 ? std::max<int64_t>(0, pos - g.sliding_window + 1) : 0;
            const int64_t n = pos - first + 1;
            const float* qh = q + (t * g.heads + h) * g.dim_qk;
            if (g.llama_cpp_f16) {
                attend_one_llama_cpp(g, qh, first, n, kvh, cache, sinks ? sinks[h] : 0.0f,
                                     sinks != nullptr, out + (t * g.heads + h) * g.dim_v);
                continue;
            }
            p.resize(size_t(n));
            float mx = -std::numeric_limits<float>::infinity();
            for (int64_t j = 0; j < n; ++j) {
                const float* kj = cache.k_at(first + j) + kvh * g.dim_qk;
                p[size_t(j)] = dot_f32(qh, kj, g.dim_qk) * g.scale;
                mx = std::max(mx, p[size_t(j)]);
            }
            const float sink = sinks ? sinks[h] : 0.0f;
            if (sinks) mx = std::max(mx, sink);
            float denom = sinks ? std::exp(sink - mx) : 0.0f;
            for (int64_t j = 0; j < n; ++j) {
                p[size_t(j)] = std::exp(p[size_t(j)] - mx);
                denom += p[size_t(j)];
            }
            std::fill(acc.begin(), acc.end(), 0.0f);
            for (int64_t j = 0; j < n; ++j) {
                const float w = p[size_t(j)] / denom;
                const float* vj = g.values_in_keys ? cache.k_at(first + j)
                                                   : cache.v_at(first + j) + kvh * g.dim_v;
#pragma omp simd
                for (int64_t d = 0; d < g.dim_v; ++d) acc[size_t(d)] += w * vj[d];
            }
            std::copy(acc.begin(), acc.end(), out + (t * g.heads + h) * g.dim_v);
        }
    });
}

LayerKvCache GqaAttention::make_cache() const {
    LayerKvCache c;
    c.k_width = cfg.kv_heads * cfg.head_dim;
    c.v_width = cfg.kv_heads * cfg.head_dim;
    return c;
}

void GqaAttention::forward(const float* x, int64_t T, int64_t pos0, LayerKvCache& cache,
                           float* out) const {
    require(cache.positions() == pos0, "attention cache out of step with the sequence");
    const int64_t qw = cfg.heads * cfg.head_dim, kw = cfg.kv_heads * cfg.head_dim;
    std::vector<float> q(size_t(T * qw)), k(size_t(T * kw)), v(size_t(T * kw));
    q_proj.forward(x, T, q.data());
    k_proj.forward(x, T, k.data());
    v_proj.forward(x, T, v.data());
    if (cfg.clip_qkv > 0.0f) {
        for (auto* buf : {&q, &k, &v}) {
            for (float& f : *buf) f = std::clamp(f, -cfg.clip_qkv, cfg.clip_qkv);
        }
    }
    if (cfg.qk_norm == GqaAttentionConfig::QkNorm::PerHead) {
        q_norm.apply(q.data(), T * cfg.heads, q.data());
        k_norm.apply(k.data(), T * cfg.kv_heads, k.data());
    } else if (cfg.qk_norm == GqaAttentionConfig::QkNorm::Whole) {
        q_norm.apply(q.data(), T, q.data());
        k_norm.apply(k.data(), T, k.data());
    }
    for (int64_t t = 0; t < T; ++t) {
        rope.apply(q.data() + t * qw, cfg.heads, cfg.head_dim, pos0 + t);
        rope.apply(k.data() + t * kw, cfg.kv_heads, cfg.head_dim, pos0 + t);
    }
    if (cfg.llama_cpp_f16) {  // llama.cpp's F16 KV cache
        for (float& f : k) f = round_f16(f);
        for (float& f : v) f = round_f16(f);
    }
    cache.k.insert(cache.k.end(), k.begin(), k.end());
    cache.v.insert(cache.v.end(), v.begin(), v.end());

    std::vector<float> attn(size_t(T * qw));
    attend_cached(cfg.geometry(), q.data(), T, pos0, cache, sinks.empty() ? nullptr : sinks.data(),
                  attn.data());
    o_proj.forward(attn.data(), T, out);
}

void GqaAttention::visit_linears(const LinearVisitor& f) {
    for (Linear* l : {&q_proj, &k_proj, &v_proj, &o_proj}) f(*l);
}

const Linear& MlaAttention::kv_b_effective() const {
    if (kv_b_proj.lora.empty()) return kv_b_proj;
    if (kv_b_merged_version_ != kv_b_proj.lora_version) {
        kv_b_merged_ = kv_b_proj;
        kv_b_merged_.merge_lora();
        kv_b_merged_version_ = kv_b_proj.lora_version;
    }
    return kv_b_merged_;
}

void MlaAttention::visit_linears(const LinearVisitor& f) {
    if (cfg.q_lora_rank > 0) {
        f(q_a_proj);
        f(q_b_proj);
    } else {
        f(q_proj);
    }
    if (split_kv_b) {
        f(k_b_proj);
        f(v_b_proj);
    } else {
        f(kv_b_proj);
    }
    for (Linear* l : {&kv_a_proj, &o_proj}) f(*l);
}

LayerKvCache MlaAttention::make_cache() const {
    LayerKvCache c;
    c.k_width = cfg.kv_lora_rank + cfg.qk_rope_dim;  // [normalised latent, roped shared key]
    c.v_width = 0;                                   // values are the latent itself
    return c;
}

void MlaAttention::forward(const float* x, int64_t T, int64_t pos0, LayerKvCache& cache,
                           float* out) const {
    require(cache.positions() == pos0, "attention cache out of step with the sequence");
    const int64_t H = cfg.heads, nope = cfg.qk_nope_dim, rope_d = cfg.qk_rope_dim;
    const int64_t qk = nope + rope_d, R = cfg.kv_lora_rank, vd = cfg.v_head_dim;

    std::vector<float> q(size_t(T * H * qk));
    if (cfg.q_lora_rank > 0) {
        std::vector<float> qa(size_t(T * cfg.q_lora_rank));
        q_a_proj.forward(x, T, qa.data());
        q_a_norm.apply(qa.data(), T, qa.data());
        q_b_proj.forward(qa.data(), T, q.data());
    } else {
        q_proj.forward(x, T, q.data());
    }
    std::vector<float> kva(size_t(T * (R + rope_d)));
    kv_a_proj.forward(x, T, kva.data());
    kv_a_norm.apply(kva.data(), T, kva.data(), R + rope_d);
    for (int64_t t = 0; t < T; ++t) {
        float* row = kva.data() + t * (R + rope_d);
        rope.apply(row + R, 1, rope_d, pos0 + t);
        cache.k.insert(cache.k.end(), row, row + R + rope_d);
        for (int64_t h = 0; h < H; ++h)
            rope.apply(q.data() + (t * H + h) * qk + nope, 1, rope_d, pos0 + t);
    }

    const Linear& kv_b = kv_b_effective();
    // Absorb W_UK into the query: q_lat[t,h] = W_UK_h^T q_nope[t,h]  ([R] per head), and
    // append the roped part so one dot product against [c_kv, k_pe] gives the score.
    const int64_t qw = R + rope_d;
    std::vector<float> qcat(size_t(T * H * qw));
    parallel_for(H, 1, [&](int64_t h0, int64_t h1) {
        std::vector<float> qn(size_t(T * nope)), ql(size_t(T * R));
        for (int64_t h = h0; h < h1; ++h) {
            for (int64_t t = 0; t < T; ++t) {
                const float* src = q.data() + (t * H + h) * qk;
                std::copy(src, src + nope, qn.data() + t * nope);
            }
            if (split_kv_b) {
                gemm_xwt(qn.data(), T, k_b_proj.w.row_slice(h * R, R), ql.data());
            } else {
                gemm_xw(qn.data(), T, kv_b.w.row_slice(h * (nope + vd), nope), ql.data());
            }
            for (int64_t t = 0; t < T; ++t) {
                float* dst = qcat.data() + (t * H + h) * qw;
                std::copy(ql.data() + t * R, ql.data() + (t + 1) * R, dst);
                const float* pe = q.data() + (t * H + h) * qk + nope;
                std::copy(pe, pe + rope_d, dst + R);
            }
        }
    });

    // Scores and the weighted latent sum: each cached position is one [c_kv, k_pe] key whose
    // first R values double as the value.
    AttentionGeometry g;
    g.heads = H;
    g.kv_heads = 1;
    g.dim_qk = qw;
    g.dim_v = R;
    g.scale = cfg.scale;
    g.values_in_keys = true;
    std::vector<float> olat(size_t(T * H * R));
    attend_cached(g, qcat.data(), T, pos0, cache, nullptr, olat.data());

    // Un-absorb W_UV: o[t,h] = W_UV_h o_lat[t,h].
    std::vector<float> o(size_t(T * H * vd));
    parallel_for(H, 1, [&](int64_t h0, int64_t h1) {
        std::vector<float> ol(size_t(T * R)), oh(size_t(T * vd));
        for (int64_t h = h0; h < h1; ++h) {
            for (int64_t t = 0; t < T; ++t) {
                const float* src = olat.data() + (t * H + h) * R;
                std::copy(src, src + R, ol.data() + t * R);
            }
            const WeightMatrix wuv = split_kv_b ? v_b_proj.w.row_slice(h * vd, vd)
                                                : kv_b.w.row_slice(h * (nope + vd) + nope, vd);
            gemm_xwt(ol.data(), T, wuv, oh.data());
            for (int64_t t = 0; t < T; ++t) {
                std::copy(oh.data() + t * vd, oh.data() + (t + 1) * vd,
                          o.data() + (t * H + h) * vd);
            }
        }
    });
    o_proj.forward(o.data(), T, out);
}

}  // namespace moe
