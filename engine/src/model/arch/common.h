#pragma once
// Shared loading helpers for the architecture files: hub tensor names, standard blocks.
#include <memory>
#include <string>
#include <vector>

#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "model/attention.h"
#include "model/decoder_model.h"
#include "model/moe_block.h"

namespace moe::arch {

inline std::string layer_prefix(int64_t i) {
    return "model.layers." + std::to_string(i) + ".";
}

// Creates the model and loads embeddings, final norm and lm_head (tied when the config says
// so or when lm_head.weight is absent).
std::unique_ptr<DecoderModel> start_model(const HfConfig& c, WeightStore ws);

RmsNorm load_norm(const WeightStore& ws, const std::string& name, int64_t width, float eps);

struct GqaOptions {
    bool qkv_bias = false;
    bool o_bias = false;
    GqaAttentionConfig::QkNorm qk_norm = GqaAttentionConfig::QkNorm::None;
    int64_t sliding_window = 0;
    bool sinks = false;
    bool interleaved_rope = false;
    double partial_rotary_factor = 1.0;
    float clip_qkv = 0.0f;  // OLMoE: clamp q, k, v to [-clip, clip] (0 = off)
};
// Loads `prefix`{q,k,v,o}_proj (+ q_norm/k_norm, sinks) with heads from the config.
std::unique_ptr<GqaAttention> load_gqa(const HfConfig& c, const WeightStore& ws,
                                       const std::string& prefix, const GqaOptions& opt);

// Head dimension: config's head_dim when given, else hidden / heads.
int64_t head_dim(const HfConfig& c);

struct MlpNames {
    std::string gate = "gate_proj", up = "up_proj", down = "down_proj";
};
std::unique_ptr<GatedMlp> load_mlp(const WeightStore& ws, const std::string& prefix, int64_t hidden,
                                   int64_t inter, const MlpNames& names = {});
// Experts `prefix`0.. `prefix`{n-1} with per-expert tensors (hub layout).
std::vector<Expert> load_experts(const WeightStore& ws, const std::string& prefix, int64_t n,
                                 int64_t hidden, int64_t inter, const MlpNames& names = {});

float rms_eps(const HfConfig& c);

// A softmax-routed MoE block: router `<prefix><router>.weight`, experts
// `<prefix>experts.N.<names>` of `inter` rows each.
std::unique_ptr<MoeBlock> load_softmax_moe(const HfConfig& c, const WeightStore& ws,
                                           const std::string& prefix, int64_t experts,
                                           int64_t inter, bool norm_topk_prob,
                                           const MlpNames& names = {},
                                           const std::string& router = "gate");

// Qwen's layer rule: dense when listed in mlp_only_layers, when there are no experts, or when
// off the decoder_sparse_step.
bool qwen_dense_layer(const HfConfig& c, int64_t layer, int64_t experts);

// DeepSeek's and GLM's layer rule: MoE from first_k_dense_replace on, every moe_layer_freq.
bool deepseek_moe_layer(const HfConfig& c, int64_t layer, int64_t experts);

// DeepSeek-V3 / GLM-4.5 routing: sigmoid scores, correction bias, groups scored by their
// best two, renormalised weights times routed_scaling_factor.
RouterConfig sigmoid_router_config(const HfConfig& c, int64_t experts);

// The sliding window of layer `layer` (0 = full attention), from `layer_types`, or Qwen2's
// use_sliding_window/max_window_layers, or (Mistral style) `sliding_window` on every layer.
int64_t sliding_window_for_layer(const HfConfig& c, int64_t layer);

// DeepSeek multi-head latent attention at `prefix` (q_proj or q_a/q_b with q_a_layernorm,
// kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj, o_proj).
std::unique_ptr<MlaAttention> load_mla(const HfConfig& c, const WeightStore& ws,
                                       const std::string& prefix, bool interleaved_rope);

// Routed experts with the DeepSeek layout: mlp.gate (+ e_score_correction_bias), mlp.experts.N,
// mlp.shared_experts (n_shared_experts * moe_intermediate_size). Used by DeepSeek and GLM.
std::unique_ptr<MoeBlock> load_deepseek_style_moe(const HfConfig& c, const WeightStore& ws,
                                                  const std::string& prefix,
                                                  const RouterConfig& router);

// Standard pre-norm layer norms: input_layernorm, post_attention_layernorm.
void load_layer_norms(DecoderLayer& L, const HfConfig& c, const WeightStore& ws, int64_t layer);

}  // namespace moe::arch
