// Llama (dense; also Mistral): GQA attention with optional biases, SiLU-gated MLP.
#include "core/error.h"
#include "model/arch/common.h"
#include "model/architectures.h"

namespace moe::arch {

std::unique_ptr<DecoderModel> build_llama(const HfConfig& c, WeightStore ws) {
    auto m = start_model(c, std::move(ws));
    const int64_t n_layers = c.require_int("num_hidden_layers");
    const int64_t inter = c.require_int("intermediate_size");
    const bool mlp_bias = c.get_bool("mlp_bias", false);
    for (int64_t i = 0; i < n_layers; ++i) {
        const std::string p = layer_prefix(i);
        DecoderLayer L;
        load_layer_norms(L, c, m->store, i);
        GqaOptions opt;
        opt.qkv_bias = opt.o_bias = c.get_bool("attention_bias", false);
        opt.sliding_window = sliding_window_for_layer(c, i);
        opt.interleaved_rope = c.get_bool("moe_rope_interleaved", false);  // GGUF llama
        L.attention = load_gqa(c, m->store, p + "self_attn.", opt);
        auto mlp = load_mlp(m->store, p + "mlp.", m->hidden, inter);
        if (mlp_bias) {
            mlp->gate.bias = load_vector(m->store, p + "mlp.gate_proj.bias", inter);
            mlp->up.bias = load_vector(m->store, p + "mlp.up_proj.bias", inter);
            mlp->down.bias = load_vector(m->store, p + "mlp.down_proj.bias", m->hidden);
        }
        L.ffn = std::move(mlp);
        m->layers.push_back(std::move(L));
    }
    return m;
}

}  // namespace moe::arch
