// gpt-oss: attention with biases, learned per-head sinks and alternating sliding/full layers,
// YaRN rotary; a router with bias (top-k of logits, softmax over the chosen); fused experts
// `gate_up_proj` [E, hidden, 2*inter] with gate/up interleaved along the last axis and
// `down_proj` [E, inter, hidden], both with biases; clamped SwiGLU.
#include <cstring>

#include "core/error.h"
#include "model/arch/common.h"
#include "model/architectures.h"

namespace moe::arch {

namespace {

// Repacks expert `e` of the fused, input-major tensors into [out, in] matrices in the stored
// type: gate rows are the even columns of gate_up, up rows the odd ones.
Expert repack_expert(const TensorView& gate_up, const TensorView& down, int64_t e, int64_t hidden,
                     int64_t inter) {
    const size_t es = dtype_size(gate_up.dtype);
    auto buf = std::make_shared<std::vector<uint8_t>>(size_t(3 * inter * hidden) * es);
    uint8_t* gate = buf->data();
    uint8_t* up = gate + size_t(inter * hidden) * es;
    uint8_t* dn = up + size_t(inter * hidden) * es;
    const uint8_t* gu = gate_up.data + size_t(e * hidden * 2 * inter) * es;
    const uint8_t* d = down.data + size_t(e * inter * hidden) * es;
    for (int64_t h = 0; h < hidden; ++h) {
        for (int64_t i = 0; i < inter; ++i) {
            std::memcpy(gate + size_t(i * hidden + h) * es, gu + size_t(h * 2 * inter + 2 * i) * es,
                        es);
            std::memcpy(up + size_t(i * hidden + h) * es,
                        gu + size_t(h * 2 * inter + 2 * i + 1) * es, es);
        }
    }
    for (int64_t i = 0; i < inter; ++i) {
        for (int64_t h = 0; h < hidden; ++h) {
            std::memcpy(dn + size_t(h * inter + i) * es, d + size_t(i * hidden + h) * es, es);
        }
    }
    Expert x;
    x.gate = make_linear(gate_up.dtype, inter, hidden, buf, gate);
    x.up = make_linear(gate_up.dtype, inter, hidden, buf, up);
    x.down = make_linear(gate_up.dtype, hidden, inter, buf, dn);
    return x;
}

// The Hugging Face layout: gate_up_proj [E, hidden, 2*inter] (gate/up interleaved),
// down_proj [E, inter, hidden], with biases.
void load_fused_experts(const WeightStore& ws, const std::string& ep, int64_t experts, int64_t H,
                        int64_t inter, std::vector<Expert>& out) {
    const TensorView& gu = ws.get(ep + "gate_up_proj", {experts, H, 2 * inter});
    const TensorView& dn = ws.get(ep + "down_proj", {experts, inter, H});
    if (dn.dtype != gu.dtype) {
        throw Error(ws.origin() + ": " + dn.describe() + ": dtype differs from gate_up_proj");
    }
    const std::vector<float> gu_bias =
        tensor_to_f32(ws.get(ep + "gate_up_proj_bias", {experts, 2 * inter}));
    const std::vector<float> down_bias = tensor_to_f32(ws.get(ep + "down_proj_bias", {experts, H}));
    for (int64_t e = 0; e < experts; ++e) {
        Expert x = repack_expert(gu, dn, e, H, inter);
        const std::string xp = ep + std::to_string(e) + ".";
        x.gate.name = xp + "gate_proj";
        x.up.name = xp + "up_proj";
        x.down.name = xp + "down_proj";
        x.gate.bias.resize(static_cast<size_t>(inter));
        x.up.bias.resize(static_cast<size_t>(inter));
        for (int64_t j = 0; j < inter; ++j) {
            x.gate.bias[size_t(j)] = gu_bias[size_t(e * 2 * inter + 2 * j)];
            x.up.bias[size_t(j)] = gu_bias[size_t(e * 2 * inter + 2 * j + 1)];
        }
        x.down.bias.assign(down_bias.begin() + e * H, down_bias.begin() + (e + 1) * H);
        out.push_back(std::move(x));
    }
}

}  // namespace

std::unique_ptr<DecoderModel> build_gpt_oss(const HfConfig& c, WeightStore ws) {
    auto m = start_model(c, std::move(ws));
    const int64_t n_layers = c.require_int("num_hidden_layers");
    const int64_t experts = c.require_int("num_local_experts");
    const int64_t inter = c.require_int("intermediate_size");
    const int64_t H = m->hidden;
    for (int64_t i = 0; i < n_layers; ++i) {
        const std::string p = layer_prefix(i);
        DecoderLayer L;
        load_layer_norms(L, c, m->store, i);
        GqaOptions opt;
        opt.qkv_bias = opt.o_bias = c.get_bool("attention_bias", true);
        opt.sinks = true;
        opt.sliding_window = sliding_window_for_layer(c, i);
        L.attention = load_gqa(c, m->store, p + "self_attn.", opt);

        auto moe = std::make_unique<MoeBlock>();
        moe->hidden = H;
        moe->router.cfg.experts = experts;
        moe->router.cfg.top_k = c.require_int("num_experts_per_tok");
        moe->router.cfg.norm_topk_prob = true;  // softmax over the chosen logits
        moe->router.gate =
            load_linear(m->store, p + "mlp.router.weight", experts, H, p + "mlp.router.bias", true);
        const std::string ep = p + "mlp.experts.";
        if (m->store.has(ep + "0.gate_proj.weight")) {
            // GGUF layout: gate/up already split, per expert, with biases.
            for (int64_t e = 0; e < experts; ++e) {
                const std::string xp = ep + std::to_string(e) + ".";
                Expert x;
                x.gate = load_linear(m->store, xp + "gate_proj.weight", inter, H,
                                     xp + "gate_proj.bias", true);
                x.up = load_linear(m->store, xp + "up_proj.weight", inter, H, xp + "up_proj.bias",
                                   true);
                x.down = load_linear(m->store, xp + "down_proj.weight", H, inter,
                                     xp + "down_proj.bias", true);
                moe->experts.push_back(std::move(x));
            }
        } else if (m->store.has(ep + "gate_up_proj_blocks")) {
            throw Error(m->store.origin() + ": " + ep + "gate_up_proj is stored as MXFP4 " +
                        "blocks; MXFP4 safetensors experts are not supported yet (dequantise to " +
                        "BF16 or use a GGUF)");
        } else {
            load_fused_experts(m->store, ep, experts, H, inter, moe->experts);
        }
        moe->activation.kind = ExpertActivation::Kind::ClampedSwiGlu;
        moe->activation.limit = float(c.get_double("swiglu_limit", 7.0));
        moe->activation.alpha = 1.702f;
        L.ffn = std::move(moe);
        m->layers.push_back(std::move(L));
    }
    return m;
}

}  // namespace moe::arch
