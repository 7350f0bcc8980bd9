// Qwen3-MoE: per-head q/k RMSNorm, softmax top-k routing (optionally renormalised), dense
// layers listed in mlp_only_layers or skipped by decoder_sparse_step.
#include <algorithm>

#include "model/arch/common.h"
#include "model/architectures.h"

namespace moe::arch {

std::unique_ptr<DecoderModel> build_qwen3_moe(const HfConfig& c, WeightStore ws) {
    auto m = start_model(c, std::move(ws));
    const int64_t n_layers = c.require_int("num_hidden_layers");
    const int64_t experts = c.get_int_any({"num_experts", "num_local_experts"}, 0);
    for (int64_t i = 0; i < n_layers; ++i) {
        const std::string p = layer_prefix(i);
        DecoderLayer L;
        load_layer_norms(L, c, m->store, i);
        GqaOptions opt;
        opt.qkv_bias = opt.o_bias = c.get_bool("attention_bias", false);
        opt.qk_norm = GqaAttentionConfig::QkNorm::PerHead;
        opt.sliding_window = sliding_window_for_layer(c, i);
        L.attention = load_gqa(c, m->store, p + "self_attn.", opt);
        if (qwen_dense_layer(c, i, experts)) {
            L.ffn = load_mlp(m->store, p + "mlp.", m->hidden, c.require_int("intermediate_size"));
        } else {
            L.ffn = load_softmax_moe(c, m->store, p + "mlp.", experts,
                                     c.require_int("moe_intermediate_size"),
                                     c.get_bool("norm_topk_prob", false));
        }
        m->layers.push_back(std::move(L));
    }
    return m;
}

}  // namespace moe::arch
