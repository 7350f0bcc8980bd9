// Qwen2-MoE (Qwen1.5-MoE, Qwen2-57B-A14B): q/k/v biases, softmax top-k routing, and a shared
// expert whose output is scaled by sigmoid(shared_expert_gate(x)).
#include <algorithm>

#include "model/arch/common.h"
#include "model/architectures.h"

namespace moe::arch {

std::unique_ptr<DecoderModel> build_qwen2_moe(const HfConfig& c, WeightStore ws) {
    auto m = start_model(c, std::move(ws));
    const int64_t n_layers = c.require_int("num_hidden_layers");
    const int64_t experts = c.get_int_any({"num_experts", "num_local_experts"}, 0);
    for (int64_t i = 0; i < n_layers; ++i) {
        const std::string p = layer_prefix(i);
        DecoderLayer L;
        load_layer_norms(L, c, m->store, i);
        GqaOptions opt;
        opt.qkv_bias = c.get_bool("qkv_bias", true);
        opt.sliding_window = sliding_window_for_layer(c, i);
        L.attention = load_gqa(c, m->store, p + "self_attn.", opt);
        if (qwen_dense_layer(c, i, experts)) {
            L.ffn = load_mlp(m->store, p + "mlp.", m->hidden, c.require_int("intermediate_size"));
        } else {
            auto moe = load_softmax_moe(c, m->store, p + "mlp.", experts,
                                        c.require_int("moe_intermediate_size"),
                                        c.get_bool("norm_topk_prob", false));
            const int64_t shared_inter = c.get_int("shared_expert_intermediate_size", 0);
            if (shared_inter > 0) {
                moe->shared = load_mlp(m->store, p + "mlp.shared_expert.", m->hidden, shared_inter);
                moe->shared_gate =
                    load_linear(m->store, p + "mlp.shared_expert_gate.weight", 1, m->hidden);
                moe->has_shared_gate = true;
            }
            L.ffn = std::move(moe);
        }
        m->layers.push_back(std::move(L));
    }
    return m;
}

}  // namespace moe::arch
