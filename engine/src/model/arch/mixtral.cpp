// Mixtral: Mistral attention and a sparse MoE (w1 = gate, w3 = up, w2 = down) whose top-k
// softmax weights are always renormalised.
#include "model/arch/common.h"
#include "model/architectures.h"

namespace moe::arch {

std::unique_ptr<DecoderModel> build_mixtral(const HfConfig& c, WeightStore ws) {
    auto m = start_model(c, std::move(ws));
    const int64_t n_layers = c.require_int("num_hidden_layers");
    const int64_t experts = c.require_int("num_local_experts");
    const MlpNames names{"w1", "w3", "w2"};
    for (int64_t i = 0; i < n_layers; ++i) {
        const std::string p = layer_prefix(i);
        DecoderLayer L;
        load_layer_norms(L, c, m->store, i);
        GqaOptions opt;
        opt.sliding_window = sliding_window_for_layer(c, i);
        opt.interleaved_rope = c.get_bool("moe_rope_interleaved", false);  // GGUF llama
        L.attention = load_gqa(c, m->store, p + "self_attn.", opt);
        // Mixtral always renormalises the top-k weights.
        auto moe = load_softmax_moe(c, m->store, p + "block_sparse_moe.", experts,
                                    c.require_int("intermediate_size"), true, names);
        L.ffn = std::move(moe);
        m->layers.push_back(std::move(L));
    }
    return m;
}

}  // namespace moe::arch
