// OLMoE: RMSNorm over the whole q and k projections (not per head), optional clip_qkv,
// softmax top-k routing without renormalisation by default.
#include "model/arch/common.h"
#include "model/architectures.h"

namespace moe::arch {

std::unique_ptr<DecoderModel> build_olmoe(const HfConfig& c, WeightStore ws) {
    auto m = start_model(c, std::move(ws));
    const int64_t n_layers = c.require_int("num_hidden_layers");
    const int64_t experts = c.get_int_any({"num_experts", "num_local_experts"}, 0);
    for (int64_t i = 0; i < n_layers; ++i) {
        const std::string p = layer_prefix(i);
        DecoderLayer L;
        load_layer_norms(L, c, m->store, i);
        GqaOptions opt;
        opt.qkv_bias = opt.o_bias = c.get_bool("attention_bias", false);
        opt.qk_norm = GqaAttentionConfig::QkNorm::Whole;
        opt.clip_qkv = float(c.get_double("clip_qkv", 0.0));
        L.attention = load_gqa(c, m->store, p + "self_attn.", opt);
        auto moe =
            load_softmax_moe(c, m->store, p + "mlp.", experts, c.require_int("intermediate_size"),
                             c.get_bool("norm_topk_prob", false));
        L.ffn = std::move(moe);
        m->layers.push_back(std::move(L));
    }
    return m;
}

}  // namespace moe::arch
