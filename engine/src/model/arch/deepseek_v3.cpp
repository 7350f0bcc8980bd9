// DeepSeek-V3 / R1 / Kimi-K2: MLA with q-LoRA, sigmoid expert scores with
// e_score_correction_bias used for selection only, group-limited top-k over groups scored by
// their best two experts, renormalised weights times routed_scaling_factor, shared experts.
#include "model/arch/common.h"
#include "model/architectures.h"

namespace moe::arch {

std::unique_ptr<DecoderModel> build_deepseek_v3(const HfConfig& c, WeightStore ws) {
    auto m = start_model(c, std::move(ws));
    const int64_t n_layers = c.require_int("num_hidden_layers");
    const int64_t experts = c.get_int("n_routed_experts", 0);
    const RouterConfig rc = sigmoid_router_config(c, experts);
    const bool interleaved = c.get_bool("rope_interleave", true);
    for (int64_t i = 0; i < n_layers; ++i) {
        const std::string p = layer_prefix(i);
        DecoderLayer L;
        load_layer_norms(L, c, m->store, i);
        L.attention = load_mla(c, m->store, p + "self_attn.", interleaved);
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
