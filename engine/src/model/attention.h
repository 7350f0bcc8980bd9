#pragma once
// Attention blocks. Each owns its projections and writes its keys/values to the layer's cache.
#include <cstdint>
#include <vector>

#include "model/kv_cache.h"
#include "model/linear.h"
#include "model/norm.h"
#include "model/rope.h"

namespace moe {

class AttentionBlock {
  public:
    virtual ~AttentionBlock() = default;
    // x [T, hidden] holds tokens at positions pos0 .. pos0+T-1; out [T, hidden].
    // Appends the tokens' keys/values to `cache`, which must hold exactly pos0 positions.
    virtual void forward(const float* x, int64_t T, int64_t pos0, LayerKvCache& cache,
                         float* out) const = 0;
    virtual LayerKvCache make_cache() const = 0;
    // Calls f on every linear layer of the block (adapters, placement, telemetry use this).
    virtual void visit_linears(const LinearVisitor& f) = 0;
};

// Scaled-dot-product attention over a cache for `heads` query heads, each reading KV head
// h / (heads / kv_heads). q [T, heads*dim_qk]; keys at cache rows with k_head_stride floats
// per KV head; out [T, heads*dim_v]. Window 0 = full causal. A sink per head (may be null)
// adds exp(sink) to the softmax denominator (gpt-oss).
struct AttentionGeometry {
    int64_t heads = 0, kv_heads = 0;
    int64_t dim_qk = 0, dim_v = 0;
    float scale = 1.0f;
    int64_t sliding_window = 0;
    bool values_in_keys = false;  // MLA: the value is the first dim_v floats of the key row
    // llama.cpp's CPU flash attention with its default F16 KV cache: queries rounded to f16,
    // online softmax, the weighted value sum accumulated in f16. Less accurate; only for
    // reproducing llama.cpp bit for bit (the caller also rounds the cached K/V to f16).
    bool llama_cpp_f16 = false;
};
void attend_cached(const AttentionGeometry& g, const float* q, int64_t T, int64_t pos0,
                   const LayerKvCache& cache, const float* sinks, float* out);

// Multi-head / grouped-query attention with the options of the supported architectures:
// q/k/v/o biases, per-head or whole-vector q/k RMSNorm, partial rotary, sliding window, sinks.
struct GqaAttentionConfig {
    int64_t hidden = 0, heads = 0, kv_heads = 0, head_dim = 0;
    enum class QkNorm { None, PerHead, Whole } qk_norm = QkNorm::None;
    int64_t sliding_window = 0;
    float scale = 1.0f;
    float clip_qkv = 0.0f;       // clamp projections to [-clip, clip] when > 0 (OLMoE)
    bool llama_cpp_f16 = false;  // see AttentionGeometry::llama_cpp_f16
    // The attention over the projected heads (one K/V row per KV head, head_dim wide).
    AttentionGeometry geometry() const {
        AttentionGeometry g;
        g.heads = heads;
        g.kv_heads = kv_heads;
        g.dim_qk = g.dim_v = head_dim;
        g.scale = scale;
        g.sliding_window = sliding_window;
        g.llama_cpp_f16 = llama_cpp_f16;
        return g;
    }
};

class GqaAttention : public AttentionBlock {
  public:
    GqaAttentionConfig cfg;
    Linear q_proj, k_proj, v_proj, o_proj;
    RmsNorm q_norm, k_norm;    // used when cfg.qk_norm != None
    std::vector<float> sinks;  // [heads] or empty
    RotaryEmbedding rope;

    void forward(const float* x, int64_t T, int64_t pos0, LayerKvCache& cache,
                 float* out) const override;
    LayerKvCache make_cache() const override;
    void visit_linears(const LinearVisitor& f) override;
};

// DeepSeek's multi-head latent attention. The cache holds the normalised latent c_kv and the
// roped shared key; kv_b_proj is absorbed into the query and the output (no per-head K/V is
// ever materialised), which is exact up to float rounding.
struct MlaAttentionConfig {
    int64_t hidden = 0, heads = 0;
    int64_t q_lora_rank = 0;  // 0 = plain q_proj
    int64_t kv_lora_rank = 0, qk_nope_dim = 0, qk_rope_dim = 0, v_head_dim = 0;
    float scale = 1.0f;
};

class MlaAttention : public AttentionBlock {
  public:
    MlaAttentionConfig cfg;
    Linear q_proj;              // when q_lora_rank == 0
    Linear q_a_proj, q_b_proj;  // when q_lora_rank > 0
    RmsNorm q_a_norm;
    Linear kv_a_proj;  // -> [kv_lora_rank + qk_rope_dim]
    RmsNorm kv_a_norm;
    Linear kv_b_proj;  // [heads * (qk_nope + v), kv_lora_rank]
    // llama.cpp's GGUF split of kv_b_proj (used when split_kv_b): k_b [heads * kv_lora_rank,
    // qk_nope] (W_UK transposed per head) and v_b [heads * v, kv_lora_rank].
    bool split_kv_b = false;
    Linear k_b_proj, v_b_proj;
    Linear o_proj;
    RotaryEmbedding rope;

    void forward(const float* x, int64_t T, int64_t pos0, LayerKvCache& cache,
                 float* out) const override;
    LayerKvCache make_cache() const override;
    void visit_linears(const LinearVisitor& f) override;
    // kv_b_proj as the absorbed forward reads it: the layer itself, or, while it carries adapter
    // terms (kept separate so that training can differentiate them), an fp32 copy with the
    // terms merged in, remade when the terms change (Linear::lora_version).
    const Linear& kv_b_effective() const;

  private:
    mutable Linear kv_b_merged_;
    mutable uint64_t kv_b_merged_version_ = ~uint64_t(0);
};

}  // namespace moe
