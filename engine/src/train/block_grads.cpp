#include "train/block_grads.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace moe::train {

namespace {

float sigmoid(float v) {
    return 1.0f / (1.0f + std::exp(-v));
}

// MLA un-absorbed: every head has its own key (nope + rope) and value (v_head_dim).
AttentionGeometry mla_geometry(const MlaAttentionConfig& c) {
    AttentionGeometry g;
    g.heads = g.kv_heads = c.heads;
    g.dim_qk = c.qk_nope_dim + c.qk_rope_dim;
    g.dim_v = c.v_head_dim;
    g.scale = c.scale;
    return g;
}

}  // namespace

void gqa_forward(const GqaAttention& a, const float* x, int64_t T, float* out, GqaTape& tp) {
    const GqaAttentionConfig& c = a.cfg;
    require(!c.llama_cpp_f16, "training: the llama.cpp f16 cache mode is for inference only");
    const int64_t qw = c.heads * c.head_dim, kw = c.kv_heads * c.head_dim;
    tp.x.assign(x, x + T * a.q_proj.in_features());
    tp.q0.resize(size_t(T * qw));
    tp.k0.resize(size_t(T * kw));
    tp.v0.resize(size_t(T * kw));
    a.q_proj.forward(x, T, tp.q0.data());
    a.k_proj.forward(x, T, tp.k0.data());
    a.v_proj.forward(x, T, tp.v0.data());
    tp.qn = tp.q0;
    tp.kn = tp.k0;
    tp.v = tp.v0;
    if (c.clip_qkv > 0.0f) {
        for (auto* buf : {&tp.qn, &tp.kn, &tp.v})
            for (float& f : *buf) f = std::clamp(f, -c.clip_qkv, c.clip_qkv);
    }
    tp.q = tp.qn;
    tp.k = tp.kn;
    if (c.qk_norm == GqaAttentionConfig::QkNorm::PerHead) {
        a.q_norm.apply(tp.q.data(), T * c.heads, tp.q.data());
        a.k_norm.apply(tp.k.data(), T * c.kv_heads, tp.k.data());
    } else if (c.qk_norm == GqaAttentionConfig::QkNorm::Whole) {
        a.q_norm.apply(tp.q.data(), T, tp.q.data());
        a.k_norm.apply(tp.k.data(), T, tp.k.data());
    }
    for (int64_t t = 0; t < T; ++t) {
        a.rope.apply(tp.q.data() + t * qw, c.heads, c.head_dim, t);
        a.rope.apply(tp.k.data() + t * kw, c.kv_heads, c.head_dim, t);
    }
    tp.attn.resize(size_t(T * qw));
    attention_forward(c.geometry(), tp.q.data(), tp.k.data(), tp.v.data(), T,
                      a.sinks.empty() ? nullptr : a.sinks.data(), tp.attn.data(), tp.probs);
    a.o_proj.forward(tp.attn.data(), T, out);
}

void gqa_backward(const GqaAttention& a, const GqaTape& tp, const float* dout, int64_t T, float* dx,
                  LoraGrads& grads) {
    const GqaAttentionConfig& c = a.cfg;
    const int64_t qw = c.heads * c.head_dim, kw = c.kv_heads * c.head_dim;
    const int64_t hidden = a.q_proj.in_features();
    std::vector<float> dattn(static_cast<size_t>(T * qw), 0.0f);
    linear_backward(a.o_proj, tp.attn.data(), dout, T, dattn.data(), grads);
    std::vector<float> dq(static_cast<size_t>(T * qw)), dk(static_cast<size_t>(T * kw)),
        dv(static_cast<size_t>(T * kw));
    attention_backward(c.geometry(), tp.q.data(), tp.k.data(), tp.v.data(), tp.probs, dattn.data(),
                       T, dq.data(), dk.data(), dv.data());
    for (int64_t t = 0; t < T; ++t) {
        rope_backward(a.rope, dq.data() + t * qw, c.heads, c.head_dim, t);
        rope_backward(a.rope, dk.data() + t * kw, c.kv_heads, c.head_dim, t);
    }
    if (c.qk_norm == GqaAttentionConfig::QkNorm::PerHead) {
        rms_norm_backward(a.q_norm, tp.qn.data(), dq.data(), T * c.heads, c.head_dim, dq.data());
        rms_norm_backward(a.k_norm, tp.kn.data(), dk.data(), T * c.kv_heads, c.head_dim, dk.data());
    } else if (c.qk_norm == GqaAttentionConfig::QkNorm::Whole) {
        rms_norm_backward(a.q_norm, tp.qn.data(), dq.data(), T, qw, dq.data());
        rms_norm_backward(a.k_norm, tp.kn.data(), dk.data(), T, kw, dk.data());
    }
    if (c.clip_qkv > 0.0f) {  // the clamp passes gradients only inside its range
        const auto pass = [&](const std::vector<float>& pre, std::vector<float>& d) {
            for (size_t i = 0; i < d.size(); ++i)
                if (pre[i] <= -c.clip_qkv || pre[i] >= c.clip_qkv) d[i] = 0.0f;
        };
        pass(tp.q0, dq);
        pass(tp.k0, dk);
        pass(tp.v0, dv);
    }
    std::fill(dx, dx + T * hidden, 0.0f);
    linear_backward(a.q_proj, tp.x.data(), dq.data(), T, dx, grads);
    linear_backward(a.k_proj, tp.x.data(), dk.data(), T, dx, grads);
    linear_backward(a.v_proj, tp.x.data(), dv.data(), T, dx, grads);
}

void mla_forward(const MlaAttention& a, const float* x, int64_t T, float* out, MlaTape& tp) {
    const MlaAttentionConfig& c = a.cfg;
    require(!a.split_kv_b,
            "training: MLA with llama.cpp's split k_b/v_b weights (GGUF) has no "
            "backward pass; train from the Hugging Face checkpoint");
    const int64_t H = c.heads, nope = c.qk_nope_dim, rd = c.qk_rope_dim, R = c.kv_lora_rank;
    const int64_t qk = nope + rd, vd = c.v_head_dim, in = a.kv_a_proj.in_features();
    tp.x.assign(x, x + T * in);
    tp.q.resize(size_t(T * H * qk));
    if (c.q_lora_rank > 0) {
        tp.qa.resize(size_t(T * c.q_lora_rank));
        a.q_a_proj.forward(x, T, tp.qa.data());
        tp.qan.resize(tp.qa.size());
        a.q_a_norm.apply(tp.qa.data(), T, tp.qan.data());
        a.q_b_proj.forward(tp.qan.data(), T, tp.q.data());
    } else {
        a.q_proj.forward(x, T, tp.q.data());
    }
    tp.kva.resize(size_t(T * (R + rd)));
    a.kv_a_proj.forward(x, T, tp.kva.data());
    tp.c.resize(size_t(T * R));
    std::vector<float> normed = tp.kva;
    a.kv_a_norm.apply(tp.kva.data(), T, normed.data(), R + rd);
    for (int64_t t = 0; t < T; ++t)
        std::copy(normed.begin() + t * (R + rd), normed.begin() + t * (R + rd) + R,
                  tp.c.begin() + t * R);
    std::vector<float> kv(size_t(T * H * (nope + vd)));
    a.kv_b_proj.forward(tp.c.data(), T, kv.data());
    tp.k.resize(size_t(T * H * qk));
    tp.v.resize(size_t(T * H * vd));
    std::vector<float> kpe(static_cast<size_t>(rd));
    for (int64_t t = 0; t < T; ++t) {
        std::copy(tp.kva.begin() + t * (R + rd) + R, tp.kva.begin() + (t + 1) * (R + rd),
                  kpe.begin());
        a.rope.apply(kpe.data(), 1, rd, t);
        for (int64_t h = 0; h < H; ++h) {
            float* q = tp.q.data() + (t * H + h) * qk;
            a.rope.apply(q + nope, 1, rd, t);
            const float* src = kv.data() + (t * H + h) * (nope + vd);
            float* k = tp.k.data() + (t * H + h) * qk;
            std::copy(src, src + nope, k);
            std::copy(kpe.begin(), kpe.end(), k + nope);
            std::copy(src + nope, src + nope + vd, tp.v.data() + (t * H + h) * vd);
        }
    }
    const AttentionGeometry g = mla_geometry(c);
    tp.attn.resize(size_t(T * H * vd));
    attention_forward(g, tp.q.data(), tp.k.data(), tp.v.data(), T, nullptr, tp.attn.data(),
                      tp.probs);
    a.o_proj.forward(tp.attn.data(), T, out);
}

void mla_backward(const MlaAttention& a, const MlaTape& tp, const float* dout, int64_t T, float* dx,
                  LoraGrads& grads) {
    const MlaAttentionConfig& c = a.cfg;
    const int64_t H = c.heads, nope = c.qk_nope_dim, rd = c.qk_rope_dim, R = c.kv_lora_rank;
    const int64_t qk = nope + rd, vd = c.v_head_dim, in = a.kv_a_proj.in_features();
    std::vector<float> dattn(static_cast<size_t>(T * H * vd), 0.0f);
    linear_backward(a.o_proj, tp.attn.data(), dout, T, dattn.data(), grads);
    const AttentionGeometry g = mla_geometry(c);
    std::vector<float> dq(tp.q.size()), dk(tp.k.size()), dv(tp.v.size());
    attention_backward(g, tp.q.data(), tp.k.data(), tp.v.data(), tp.probs, dattn.data(), T,
                       dq.data(), dk.data(), dv.data());
    // Keys and values back to kv_b_proj's output, and the shared roped key.
    std::vector<float> dkv(static_cast<size_t>(T * H * (nope + vd)));
    std::vector<float> dkva(static_cast<size_t>(T * (R + rd)), 0.0f);
    for (int64_t t = 0; t < T; ++t) {
        float* dpe = dkva.data() + t * (R + rd) + R;
        for (int64_t h = 0; h < H; ++h) {
            const float* gk = dk.data() + (t * H + h) * qk;
            float* dst = dkv.data() + (t * H + h) * (nope + vd);
            std::copy(gk, gk + nope, dst);
            std::copy(dv.begin() + (t * H + h) * vd, dv.begin() + (t * H + h + 1) * vd, dst + nope);
            for (int64_t i = 0; i < rd; ++i) dpe[i] += gk[nope + i];
            rope_backward(a.rope, dq.data() + (t * H + h) * qk + nope, 1, rd, t);
        }
        rope_backward(a.rope, dpe, 1, rd, t);
    }
    std::vector<float> dc(static_cast<size_t>(T * R), 0.0f);
    linear_backward(a.kv_b_proj, tp.c.data(), dkv.data(), T, dc.data(), grads);
    std::vector<float> dcs(dkva.size(), 0.0f);  // dc laid out with the kv_a rows' stride
    for (int64_t t = 0; t < T; ++t)
        std::copy(dc.begin() + t * R, dc.begin() + (t + 1) * R, dcs.begin() + t * (R + rd));
    std::vector<float> dnorm(dkva.size(), 0.0f);
    rms_norm_backward(a.kv_a_norm, tp.kva.data(), dcs.data(), T, R + rd, dnorm.data());
    for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < R; ++i)
            dkva[size_t(t * (R + rd) + i)] = dnorm[size_t(t * (R + rd) + i)];
    std::fill(dx, dx + T * in, 0.0f);
    linear_backward(a.kv_a_proj, tp.x.data(), dkva.data(), T, dx, grads);
    if (c.q_lora_rank > 0) {
        std::vector<float> dqan(tp.qan.size(), 0.0f), dqa(tp.qa.size());
        linear_backward(a.q_b_proj, tp.qan.data(), dq.data(), T, dqan.data(), grads);
        rms_norm_backward(a.q_a_norm, tp.qa.data(), dqan.data(), T, c.q_lora_rank, dqa.data());
        linear_backward(a.q_a_proj, tp.x.data(), dqa.data(), T, dx, grads);
    } else {
        linear_backward(a.q_proj, tp.x.data(), dq.data(), T, dx, grads);
    }
}

void mlp_forward(const Linear& gate, const Linear& up, const Linear& down,
                 const ExpertActivation& act, const float* x, int64_t T, float* out, MlpTape& tp) {
    const int64_t inter = gate.out_features();
    tp.x.assign(x, x + T * gate.in_features());
    tp.g.resize(size_t(T * inter));
    tp.u.resize(size_t(T * inter));
    tp.h.resize(size_t(T * inter));
    gate.forward(x, T, tp.g.data());
    up.forward(x, T, tp.u.data());
    act.apply(tp.g.data(), tp.u.data(), tp.h.data(), T * inter);
    down.forward(tp.h.data(), T, out);
}

void mlp_backward(const Linear& gate, const Linear& up, const Linear& down,
                  const ExpertActivation& act, const MlpTape& tp, const float* dout, int64_t T,
                  float* dx, LoraGrads& grads) {
    const int64_t inter = gate.out_features();
    std::vector<float> dh(static_cast<size_t>(T * inter), 0.0f), dg(dh.size()), du(dh.size());
    linear_backward(down, tp.h.data(), dout, T, dh.data(), grads);
    glu_backward(act, tp.g.data(), tp.u.data(), dh.data(), T * inter, dg.data(), du.data());
    linear_backward(gate, tp.x.data(), dg.data(), T, dx, grads);
    linear_backward(up, tp.x.data(), du.data(), T, dx, grads);
}

void moe_forward(const MoeBlock& m, const float* x, int64_t T, float* out, MoeTape& tp) {
    const int64_t H = m.hidden, E = m.router.cfg.experts;
    require(!m.experts.empty(), "training: this MoE block has no experts loaded");
    tp.x.assign(x, x + T * H);
    tp.logits.resize(size_t(T * E));
    m.router.gate.forward(x, T, tp.logits.data());
    tp.routing = m.router.route_logits(tp.logits.data(), T);
    const int64_t k = tp.routing.k;
    tp.routed.assign(size_t(E), {});
    for (int64_t i = 0; i < T * k; ++i) tp.routed[size_t(tp.routing.ids[size_t(i)])].push_back(i);
    tp.experts.assign(size_t(E), MlpTape{});
    tp.expert_out.assign(size_t(T * k * H), 0.0f);
    std::fill(out, out + T * H, 0.0f);
    std::vector<float> xe, ye;
    for (int64_t e = 0; e < E; ++e) {
        const std::vector<int64_t>& sl = tp.routed[size_t(e)];
        if (sl.empty()) continue;
        const int64_t n = int64_t(sl.size());
        xe.resize(size_t(n * H));
        ye.resize(size_t(n * H));
        for (int64_t r = 0; r < n; ++r)
            std::copy(x + (sl[size_t(r)] / k) * H, x + (sl[size_t(r)] / k + 1) * H,
                      xe.begin() + r * H);
        const Expert& ex = m.experts[size_t(e)];
        mlp_forward(ex.gate, ex.up, ex.down, m.activation, xe.data(), n, ye.data(),
                    tp.experts[size_t(e)]);
        for (int64_t r = 0; r < n; ++r) {
            const int64_t s = sl[size_t(r)], t = s / k;
            std::copy(ye.begin() + r * H, ye.begin() + (r + 1) * H, tp.expert_out.begin() + s * H);
            const float w = tp.routing.weights[size_t(s)];
            for (int64_t d = 0; d < H; ++d) out[t * H + d] += w * ye[size_t(r * H + d)];
        }
    }
    if (!m.shared) return;
    tp.shared_out.resize(size_t(T * H));
    ExpertActivation silu;
    mlp_forward(m.shared->gate, m.shared->up, m.shared->down, silu, x, T, tp.shared_out.data(),
                tp.shared);
    tp.shared_gate.assign(size_t(T), 0.0f);
    if (m.has_shared_gate) m.shared_gate.forward(x, T, tp.shared_gate.data());
    for (int64_t t = 0; t < T; ++t) {
        const float gw = m.has_shared_gate ? sigmoid(tp.shared_gate[size_t(t)]) : 1.0f;
        for (int64_t d = 0; d < H; ++d) out[t * H + d] += gw * tp.shared_out[size_t(t * H + d)];
    }
}

void moe_backward(const MoeBlock& m, const MoeTape& tp, const float* dout, int64_t T, float* dx,
                  LoraGrads& grads) {
    const int64_t H = m.hidden, E = m.router.cfg.experts, k = tp.routing.k;
    const RouterConfig& rc = m.router.cfg;
    std::fill(dx, dx + T * H, 0.0f);
    std::vector<float> dlogits(static_cast<size_t>(T * E), 0.0f);
    std::vector<float> scores(static_cast<size_t>(E)), dscore(static_cast<size_t>(E));
    // Experts, one batched pass each: their input gradient, and each slot's routing weight's.
    std::vector<double> dw(static_cast<size_t>(T * k), 0.0);
    std::vector<float> dye, dxe;
    for (int64_t e = 0; e < E; ++e) {
        const std::vector<int64_t>& sl = tp.routed[size_t(e)];
        if (sl.empty()) continue;
        const int64_t n = int64_t(sl.size());
        dye.resize(size_t(n * H));
        dxe.assign(size_t(n * H), 0.0f);
        for (int64_t r = 0; r < n; ++r) {
            const int64_t s = sl[size_t(r)], t = s / k;
            const float w = tp.routing.weights[size_t(s)];
            const float* y = tp.expert_out.data() + s * H;
            double d = 0;
            for (int64_t c = 0; c < H; ++c) {
                dye[size_t(r * H + c)] = w * dout[t * H + c];
                d += double(dout[t * H + c]) * y[c];
            }
            dw[size_t(s)] = d;
        }
        const Expert& ex = m.experts[size_t(e)];
        mlp_backward(ex.gate, ex.up, ex.down, m.activation, tp.experts[size_t(e)], dye.data(), n,
                     dxe.data(), grads);
        for (int64_t r = 0; r < n; ++r) {
            const int64_t t = sl[size_t(r)] / k;
            for (int64_t c = 0; c < H; ++c) dx[t * H + c] += dxe[size_t(r * H + c)];
        }
    }
    for (int64_t t = 0; t < T; ++t) {
        // Routing weights -> scores -> router logits (the selection itself is piecewise
        // constant). w_j = factor · s_j (/ sum of the chosen s when norm_topk_prob).
        const float* l = tp.logits.data() + t * E;
        if (rc.scoring == RouterConfig::Scoring::Softmax) {
            const float mx = *std::max_element(l, l + E);
            double sum = 0;
            for (int64_t e = 0; e < E; ++e) sum += (scores[size_t(e)] = std::exp(l[e] - mx));
            for (float& s : scores) s = float(s / sum);
        } else {
            for (int64_t e = 0; e < E; ++e) scores[size_t(e)] = sigmoid(l[e]);
        }
        std::fill(dscore.begin(), dscore.end(), 0.0f);
        double chosen = 0, dw_s = 0;
        for (int64_t j = 0; j < k; ++j) {
            const float s = scores[size_t(tp.routing.ids[size_t(t * k + j)])];
            chosen += s;
            dw_s += dw[size_t(t * k + j)] * s;
        }
        for (int64_t j = 0; j < k; ++j) {
            const int32_t id = tp.routing.ids[size_t(t * k + j)];
            double d = dw[size_t(t * k + j)] * rc.routed_scaling_factor;
            if (rc.norm_topk_prob) {
                const double S = chosen + 1e-20;
                d = rc.routed_scaling_factor * (dw[size_t(t * k + j)] / S - dw_s / (S * S));
            }
            dscore[size_t(id)] += float(d);
        }
        float* dz = dlogits.data() + t * E;
        if (rc.scoring == RouterConfig::Scoring::Softmax) {
            double sd = 0;
            for (int64_t e = 0; e < E; ++e) sd += double(scores[size_t(e)]) * dscore[size_t(e)];
            for (int64_t e = 0; e < E; ++e)
                dz[e] = float(scores[size_t(e)] * (dscore[size_t(e)] - sd));
        } else {
            for (int64_t e = 0; e < E; ++e)
                dz[e] = dscore[size_t(e)] * scores[size_t(e)] * (1.0f - scores[size_t(e)]);
        }
    }
    linear_backward(m.router.gate, tp.x.data(), dlogits.data(), T, dx, grads);
    if (!m.shared) return;
    std::vector<float> dsh(static_cast<size_t>(T * H)), dgate(static_cast<size_t>(T), 0.0f);
    for (int64_t t = 0; t < T; ++t) {
        const float z = tp.shared_gate[size_t(t)];
        const float gw = m.has_shared_gate ? sigmoid(z) : 1.0f;
        double d = 0;
        for (int64_t c = 0; c < H; ++c) {
            dsh[size_t(t * H + c)] = gw * dout[t * H + c];
            d += double(dout[t * H + c]) * tp.shared_out[size_t(t * H + c)];
        }
        dgate[size_t(t)] = float(d) * gw * (1.0f - gw);
    }
    ExpertActivation silu;
    mlp_backward(m.shared->gate, m.shared->up, m.shared->down, silu, tp.shared, dsh.data(), T, dx,
                 grads);
    if (m.has_shared_gate) linear_backward(m.shared_gate, tp.x.data(), dgate.data(), T, dx, grads);
}

}  // namespace moe::train
