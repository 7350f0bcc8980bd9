#pragma once
// The pre-norm decoder stack every supported architecture shares:
//   x = embed(tokens); per layer: x += attn(norm1(x)); x += ffn(norm2(x)); logits = head(norm(x))
// Architectures differ only in the blocks they put in each layer (see model/arch/).
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "model/attention.h"
#include "model/feed_forward.h"
#include "model/model.h"

namespace moe {

struct DecoderLayer {
    RmsNorm input_norm, post_attention_norm;
    std::unique_ptr<AttentionBlock> attention;
    std::unique_ptr<FeedForward> ffn;
};

class DecoderModel : public Model {
  public:
    DecoderModel(HfConfig config, WeightStore store)
        : config(std::move(config)), store(std::move(store)) {}

    const ModelInfo& info() const override { return info_; }
    KvCache new_cache() const override;
    void forward(std::span<const int32_t> tokens, KvCache& cache, std::vector<float>& logits,
                 bool all_positions) override;
    // Batched decode: embeddings, norms, feed-forward/MoE layers and the head run on all rows
    // together; only attention runs per sequence, over that sequence's cache.
    void forward_batch(std::span<const int32_t> tokens, std::span<KvCache* const> caches,
                       std::vector<float>& logits) override;

    // Calls f on every linear layer (attention, MLPs, routers, experts, lm_head).
    void visit_linears(const LinearVisitor& f);

    // Fills info() from the loaded blocks and the stored tensors (parameter counts, dtype).
    void finalize_info(const std::string& path);
    // Records how the experts were prepared (ModelInfo::expert_format / expert_numa_parts).
    void set_expert_placement(const std::string& format, int numa_parts) {
        info_.expert_format = format;
        info_.expert_numa_parts = numa_parts;
    }

    HfConfig config;
    WeightStore store;  // owns the mappings every weight view points into
    int64_t hidden = 0, vocab = 0;
    WeightMatrix embed;  // [vocab, hidden]
    std::vector<DecoderLayer> layers;
    RmsNorm final_norm;
    Linear lm_head;
    // Expert deferral (KTransformers): in every MoE layer but the last, the `deferred_experts`
    // lowest-weighted of each token's experts join the residual stream after the next layer
    // instead of this one, so that a hybrid schedule can run them while the next layer's
    // attention runs. 0 (default) = exact; changes the model's output when > 0.
    int64_t deferred_experts = 0;

  private:
    // Attention of layer `li` for the normed rows h, written to y (both [rows, hidden]).
    using AttendFn = std::function<void(size_t li, const float* h, float* y)>;
    void embed_rows(std::span<const int32_t> tokens, float* x) const;
    // x [T, hidden] in place through every layer (trace_pos labels the trace spans).
    void run_layers(float* x, int64_t T, int64_t trace_pos, const AttendFn& attend) const;
    void head_rows(const float* x, int64_t rows, std::vector<float>& logits) const;

    ModelInfo info_;
};

}  // namespace moe
