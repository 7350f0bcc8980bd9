// DeepSeek-V2 / V2-Lite: MLA (interleaved rotary), softmax routing with greedy or
// group-limited-greedy top-k, shared experts, first_k_dense_replace dense layers.
#include "core/error.h"
#include "model/arch/common.h"
#include "model/architectures.h"

namespace moe::arch {

std::unique_ptr<DecoderModel> build_deepseek_v2(const HfConfig& c, WeightStore ws) {
    auto m = start_model(c, std::move(ws));
    const int64_t n_layers = c.require_int("num_hidden_layers");
    const int64_t experts = c.get_int("n_routed_experts", 0);
    RouterConfig rc;
    rc.experts = experts;
    rc.top_k = c.get_int("num_experts_per_tok", 0);
    rc.scoring = RouterConfig::Scoring::Softmax;
    const std::string method = c.get_string("topk_method", "greedy");
    if (method == "group_limited_greedy") {
        rc.n_group = c.get_int("n_group", 1);
        rc.topk_group = c.get_int("topk_group", 1);
        rc.group_score = RouterConfig::GroupScore::Max;
    } else if (method != "greedy") {
        throw Error(c.origin() + ": unsupported topk_method '" + method + "' for deepseek_v2");
    }
    // transformers' DeepSeek-V2 router ignores norm_topk_prob: weights are the softmax scores
    // of the chosen experts times routed_scaling_factor.
    rc.norm_topk_prob = false;
    rc.routed_scaling_factor = float(c.get_double("routed_scaling_factor", 1.0));
    for (int64_t i = 0; i < n_layers; ++i) {
        const std::string p = layer_prefix(i);
        DecoderLayer L;
        load_layer_norms(L, c, m->store, i);
        L.attention = load_mla(c, m->store, p + "self_attn.", /*interleaved_rope=*/true);
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
