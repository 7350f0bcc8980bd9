// GLM-4.5 / 4.6 MoE: partial rotary (NeoX halves), optional per-head q/k RMSNorm, q/k/v
// biases, DeepSeek-V3-style sigmoid routing with correction bias, shared experts,
// first_k_dense_replace dense layers.
#include "model/arch/common.h"
#include "model/architectures.h"

namespace moe::arch {

std::unique_ptr<DecoderModel> build_glm4_moe(const HfConfig& c, WeightStore ws) {
    auto m = start_model(c, std::move(ws));
    const int64_t n_layers = c.require_int("num_hidden_layers");
    const int64_t experts = c.get_int("n_routed_experts", 0);
    const RouterConfig rc = sigmoid_router_config(c, experts);
    for (int64_t i = 0; i < n_layers; ++i) {
        const std::string p = layer_prefix(i);
        DecoderLayer L;
        load_layer_norms(L, c, m->store, i);
        GqaOptions opt;
        opt.qkv_bias = c.get_bool("attention_bias", false);
        opt.qk_norm = c.get_bool("use_qk_norm", false) ? GqaAttentionConfig::QkNorm::PerHead
                                                       : GqaAttentionConfig::QkNorm::None;
        L.attention = load_gqa(c, m->store, p + "self_attn.", opt);
        if (deepseek_moe_layer(c, i, experts)) {
            L.ffn = load_deepseek_style_moe(c, m->store, p + "mlp.", rc);
        } else {
            L.ffn = load_mlp(m->store, p + "mlp.", m->hidden, c.require_int("intermediate_size"));
        }
        m->layers.push_back(std::move(L));
    }
    return m;
}

}  // namespace moe::arch
