#include "model/arch/common.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace moe::arch {

float rms_eps(const HfConfig& c) {
    return float(c.get_double("rms_norm_eps", 1e-6));
}

int64_t head_dim(const HfConfig& c) {
    const int64_t hidden = c.require_int("hidden_size");
    const int64_t heads = c.require_int("num_attention_heads");
    return c.get_int("head_dim", hidden / heads);
}

std::unique_ptr<DecoderModel> start_model(const HfConfig& c, WeightStore ws) {
    auto m = std::make_unique<DecoderModel>(c, std::move(ws));
    m->hidden = c.require_int("hidden_size");
    m->vocab = c.require_int("vocab_size");
    const Linear emb = load_linear(m->store, "model.embed_tokens.weight", m->vocab, m->hidden);
    m->embed = emb.w;
    m->final_norm = load_norm(m->store, "model.norm.weight", m->hidden, rms_eps(c));
    const bool tied = c.get_bool("tie_word_embeddings", false) || !m->store.has("lm_head.weight");
    m->lm_head = tied ? emb : load_linear(m->store, "lm_head.weight", m->vocab, m->hidden);
    return m;
}

RmsNorm load_norm(const WeightStore& ws, const std::string& name, int64_t width, float eps) {
    RmsNorm n;
    n.weight = load_vector(ws, name, width);
    n.eps = eps;
    return n;
}

void load_layer_norms(DecoderLayer& L, const HfConfig& c, const WeightStore& ws, int64_t layer) {
    const std::string p = layer_prefix(layer);
    const int64_t hidden = c.require_int("hidden_size");
    L.input_norm = load_norm(ws, p + "input_layernorm.weight", hidden, rms_eps(c));
    L.post_attention_norm =
        load_norm(ws, p + "post_attention_layernorm.weight", hidden, rms_eps(c));
}

std::unique_ptr<GqaAttention> load_gqa(const HfConfig& c, const WeightStore& ws,
                                       const std::string& prefix, const GqaOptions& opt) {
    auto a = std::make_unique<GqaAttention>();
    GqaAttentionConfig& g = a->cfg;
    g.hidden = c.require_int("hidden_size");
    g.heads = c.require_int("num_attention_heads");
    g.kv_heads = c.get_int("num_key_value_heads", g.heads);
    g.head_dim = head_dim(c);
    if (g.kv_heads <= 0 || g.heads % g.kv_heads != 0) {
        throw Error(c.origin() + ": num_attention_heads (" + std::to_string(g.heads) +
                    ") must be a multiple of num_key_value_heads (" + std::to_string(g.kv_heads) +
                    ")");
    }
    g.qk_norm = opt.qk_norm;
    g.sliding_window = opt.sliding_window;
    g.clip_qkv = opt.clip_qkv;
    g.llama_cpp_f16 = c.llama_cpp_attention();
    g.scale = 1.0f / std::sqrt(float(g.head_dim));
    const int64_t qw = g.heads * g.head_dim, kw = g.kv_heads * g.head_dim;
    a->q_proj = load_linear(ws, prefix + "q_proj.weight", qw, g.hidden, prefix + "q_proj.bias",
                            opt.qkv_bias);
    a->k_proj = load_linear(ws, prefix + "k_proj.weight", kw, g.hidden, prefix + "k_proj.bias",
                            opt.qkv_bias);
    a->v_proj = load_linear(ws, prefix + "v_proj.weight", kw, g.hidden, prefix + "v_proj.bias",
                            opt.qkv_bias);
    a->o_proj =
        load_linear(ws, prefix + "o_proj.weight", g.hidden, qw, prefix + "o_proj.bias", opt.o_bias);
    const float eps = rms_eps(c);
    if (opt.qk_norm == GqaAttentionConfig::QkNorm::PerHead) {
        a->q_norm = load_norm(ws, prefix + "q_norm.weight", g.head_dim, eps);
        a->k_norm = load_norm(ws, prefix + "k_norm.weight", g.head_dim, eps);
    } else if (opt.qk_norm == GqaAttentionConfig::QkNorm::Whole) {
        a->q_norm = load_norm(ws, prefix + "q_norm.weight", qw, eps);
        a->k_norm = load_norm(ws, prefix + "k_norm.weight", kw, eps);
    }
    if (opt.sinks) a->sinks = load_vector(ws, prefix + "sinks", g.heads);
    const RopeConfig rope = c.rope();
    const double partial =
        opt.partial_rotary_factor != 1.0 ? opt.partial_rotary_factor : rope.partial_rotary_factor;
    const int64_t rotary_dim = int64_t(double(g.head_dim) * partial);
    a->rope = RotaryEmbedding::create(rope, rotary_dim, c.get_int("max_position_embeddings", 0),
                                      opt.interleaved_rope, rope.bf16_frequencies);
    return a;
}

std::unique_ptr<GatedMlp> load_mlp(const WeightStore& ws, const std::string& prefix, int64_t hidden,
                                   int64_t inter, const MlpNames& names) {
    auto m = std::make_unique<GatedMlp>();
    m->gate = load_linear(ws, prefix + names.gate + ".weight", inter, hidden);
    m->up = load_linear(ws, prefix + names.up + ".weight", inter, hidden);
    m->down = load_linear(ws, prefix + names.down + ".weight", hidden, inter);
    return m;
}

std::vector<Expert> load_experts(const WeightStore& ws, const std::string& prefix, int64_t n,
                                 int64_t hidden, int64_t inter, const MlpNames& names) {
    std::vector<Expert> experts(static_cast<size_t>(n));
    for (int64_t e = 0; e < n; ++e) {
        const std::string p = prefix + std::to_string(e) + ".";
        experts[size_t(e)].gate = load_linear(ws, p + names.gate + ".weight", inter, hidden);
        experts[size_t(e)].up = load_linear(ws, p + names.up + ".weight", inter, hidden);
        experts[size_t(e)].down = load_linear(ws, p + names.down + ".weight", hidden, inter);
    }
    return experts;
}

std::unique_ptr<MoeBlock> load_softmax_moe(const HfConfig& c, const WeightStore& ws,
                                           const std::string& prefix, int64_t experts,
                                           int64_t inter, bool norm_topk_prob,
                                           const MlpNames& names, const std::string& router) {
    auto moe = std::make_unique<MoeBlock>();
    moe->hidden = c.require_int("hidden_size");
    moe->router.cfg.experts = experts;
    moe->router.cfg.top_k = c.require_int("num_experts_per_tok");
    moe->router.cfg.norm_topk_prob = norm_topk_prob;
    moe->router.gate = load_linear(ws, prefix + router + ".weight", experts, moe->hidden);
    moe->experts = load_experts(ws, prefix + "experts.", experts, moe->hidden, inter, names);
    return moe;
}

bool qwen_dense_layer(const HfConfig& c, int64_t layer, int64_t experts) {
    const auto dense = c.get_int_list("mlp_only_layers");
    const int64_t step = std::max<int64_t>(1, c.get_int("decoder_sparse_step", 1));
    return std::find(dense.begin(), dense.end(), layer) != dense.end() || experts == 0 ||
           (layer + 1) % step != 0;
}

bool deepseek_moe_layer(const HfConfig& c, int64_t layer, int64_t experts) {
    const int64_t freq = std::max<int64_t>(1, c.get_int("moe_layer_freq", 1));
    return experts > 0 && layer >= c.get_int("first_k_dense_replace", 0) && layer % freq == 0;
}

RouterConfig sigmoid_router_config(const HfConfig& c, int64_t experts) {
    RouterConfig rc;
    rc.experts = experts;
    rc.top_k = c.get_int("num_experts_per_tok", 0);
    rc.scoring = RouterConfig::Scoring::Sigmoid;
    rc.n_group = c.get_int("n_group", 1);
    rc.topk_group = c.get_int("topk_group", 1);
    rc.group_score = RouterConfig::GroupScore::Top2Sum;
    rc.norm_topk_prob = c.get_bool("norm_topk_prob", true);
    rc.routed_scaling_factor = float(c.get_double("routed_scaling_factor", 1.0));
    return rc;
}

int64_t sliding_window_for_layer(const HfConfig& c, int64_t layer) {
    const int64_t window = c.get_int("sliding_window", 0);
    if (window <= 0) return 0;
    const auto types = c.get_string_list("layer_types");
    if (!types.empty()) {
        if (layer >= int64_t(types.size())) {
            throw Error(c.origin() + ": layer_types lists fewer layers than num_hidden_layers");
        }
        return types[size_t(layer)] == "sliding_attention" ? window : 0;
    }
    if (c.has("use_sliding_window")) {
        const bool on = c.get_bool("use_sliding_window", false);
        return on && layer >= c.get_int("max_window_layers", 0) ? window : 0;
    }
    return window;
}

std::unique_ptr<MlaAttention> load_mla(const HfConfig& c, const WeightStore& ws,
                                       const std::string& prefix, bool interleaved_rope) {
    auto a = std::make_unique<MlaAttention>();
    MlaAttentionConfig& g = a->cfg;
    g.hidden = c.require_int("hidden_size");
    g.heads = c.require_int("num_attention_heads");
    g.q_lora_rank = c.get_int("q_lora_rank", 0);
    g.kv_lora_rank = c.require_int("kv_lora_rank");
    g.qk_nope_dim = c.require_int("qk_nope_head_dim");
    g.qk_rope_dim = c.require_int("qk_rope_head_dim");
    g.v_head_dim = c.require_int("v_head_dim");
    const int64_t qk = g.qk_nope_dim + g.qk_rope_dim;
    const float eps = rms_eps(c);
    if (g.q_lora_rank > 0) {
        a->q_a_proj = load_linear(ws, prefix + "q_a_proj.weight", g.q_lora_rank, g.hidden);
        a->q_a_norm = load_norm(ws, prefix + "q_a_layernorm.weight", g.q_lora_rank, eps);
        a->q_b_proj = load_linear(ws, prefix + "q_b_proj.weight", g.heads * qk, g.q_lora_rank);
    } else {
        a->q_proj = load_linear(ws, prefix + "q_proj.weight", g.heads * qk, g.hidden);
    }
    a->kv_a_proj = load_linear(ws, prefix + "kv_a_proj_with_mqa.weight",
                               g.kv_lora_rank + g.qk_rope_dim, g.hidden);
    a->kv_a_norm = load_norm(ws, prefix + "kv_a_layernorm.weight", g.kv_lora_rank, eps);
    if (!ws.has(prefix + "kv_b_proj.weight") && ws.has(prefix + "k_b_proj.weight")) {
        a->split_kv_b = true;
        a->k_b_proj =
            load_linear(ws, prefix + "k_b_proj.weight", g.heads * g.kv_lora_rank, g.qk_nope_dim);
        a->v_b_proj =
            load_linear(ws, prefix + "v_b_proj.weight", g.heads * g.v_head_dim, g.kv_lora_rank);
        a->k_b_proj.reads_weight_directly = a->v_b_proj.reads_weight_directly = true;
    } else {
        a->kv_b_proj = load_linear(ws, prefix + "kv_b_proj.weight",
                                   g.heads * (g.qk_nope_dim + g.v_head_dim), g.kv_lora_rank);
        // Absorbed into q and o: MlaAttention reads it through kv_b_effective(), which merges
        // adapter terms itself (training keeps them separate).
    }
    a->o_proj = load_linear(ws, prefix + "o_proj.weight", g.hidden, g.heads * g.v_head_dim);
    const RopeConfig rope = c.rope();
    a->rope = RotaryEmbedding::create(rope, g.qk_rope_dim, c.get_int("max_position_embeddings", 0),
                                      interleaved_rope, rope.bf16_frequencies);
    g.scale = 1.0f / std::sqrt(float(qk));
    if (rope.type != "default" && rope.mscale_all_dim != 0.0) {
        const double m = yarn_get_mscale(rope.factor, rope.mscale_all_dim);
        g.scale = float(g.scale * m * m);
    }
    return a;
}

std::unique_ptr<MoeBlock> load_deepseek_style_moe(const HfConfig& c, const WeightStore& ws,
                                                  const std::string& prefix,
                                                  const RouterConfig& router) {
    auto moe = std::make_unique<MoeBlock>();
    moe->hidden = c.require_int("hidden_size");
    const int64_t inter = c.require_int("moe_intermediate_size");
    moe->router.cfg = router;
    moe->router.gate = load_linear(ws, prefix + "gate.weight", router.experts, moe->hidden);
    if (ws.has(prefix + "gate.e_score_correction_bias")) {
        moe->router.correction_bias =
            load_vector(ws, prefix + "gate.e_score_correction_bias", router.experts);
    }
    moe->experts = load_experts(ws, prefix + "experts.", router.experts, moe->hidden, inter);
    const int64_t n_shared = c.get_int("n_shared_experts", 0);
    if (n_shared > 0) {
        moe->shared = load_mlp(ws, prefix + "shared_experts.", moe->hidden, inter * n_shared);
    }
    return moe;
}

}  // namespace moe::arch
