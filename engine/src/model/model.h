#pragma once
// A loaded causal language model: token ids in, next-token logits out, with a KV cache.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/kv_cache.h"

namespace moe {

// What `moestudio-cli info` reports and the UI shows about a model.
struct ModelInfo {
    std::string architecture;  // model_type, e.g. "qwen3_moe"
    std::string path;
    int64_t layers = 0;
    int64_t hidden_size = 0;
    int64_t vocab_size = 0;
    int64_t experts = 0;            // routed experts per MoE layer (0 for dense models)
    int64_t experts_per_token = 0;  // top-k
    int64_t moe_layers = 0;
    int64_t shared_experts = 0;
    int64_t params_total = 0;
    int64_t params_active = 0;  // per token: total minus the routed experts not chosen
    std::string dtype;          // dominant stored weight type, e.g. "BF16"
    // How the routed experts run on the CPU (LoadOptions::expert_format after "auto" was
    // resolved, e.g. "bf16-exact", "gguf", "reference"; "mixed" when layers differ) and into how
    // many NUMA parts each expert is cut.
    std::string expert_format;
    int expert_numa_parts = 1;
    int64_t max_context = 0;
    std::vector<int64_t> eos_token_ids;
    int64_t bos_token_id = -1;
};

class Model {
  public:
    virtual ~Model() = default;
    virtual const ModelInfo& info() const = 0;
    virtual KvCache new_cache() const = 0;
    // Runs `tokens` at positions cache.size() ... and appends them to the cache. Writes the
    // logits of every position ([n, vocab]) when all_positions, else only of the last
    // ([vocab]).
    virtual void forward(std::span<const int32_t> tokens, KvCache& cache,
                         std::vector<float>& logits, bool all_positions) = 0;
    // One decode step for several sequences at once: tokens[i] runs at position
    // caches[i]->size() of its own cache; logits [n, vocab] (row i for sequence i). The caches
    // must be distinct. The default runs forward() once per sequence; a model that can push
    // the rows through its non-attention layers as one batch (DecoderModel) overrides it, so
    // that the server's concurrent requests share each weight read.
    virtual void forward_batch(std::span<const int32_t> tokens, std::span<KvCache* const> caches,
                               std::vector<float>& logits);
};

// (fraction done in [0, 1], what is happening), called on the loading thread.
using LoadProgress = std::function<void(double, const std::string&)>;

struct LoadOptions {
    // Reproduce transformers after `model.to(torch.bfloat16)`, which rounds the rotary
    // frequencies to bf16 (references made that way, e.g. the hf-tiny goldens). Off by default:
    // exact fp32 frequencies, as from_pretrained and llama.cpp use.
    bool bf16_rope_frequencies = false;
    // Reproduce llama.cpp's CPU attention bit for bit: F16 KV cache and flash attention that
    // accumulates values in f16. Off by default (fp32 throughout is more accurate).
    bool llama_cpp_attention = false;
    // How routed experts run on the CPU: "auto" (GGUF experts in place through the fused
    // operator's kernels; bf16/fp8 experts repacked as "bf16-exact"; f32/f16 experts and experts
    // with LoRA terms on the reference path), "reference", "gguf", "bf16-exact" (bf16 weights,
    // fp32 activations), "bf16" (bf16 activations too: AMX / vdpbf16ps, fastest prefill),
    // "int8", "int4", "int4-g64", "int4-g128" (repacked at load into the fused kernels' layout;
    // the source pages are handed back to the OS).
    std::string expert_format = "auto";
    // Expert deferral: this many of each token's lowest-weighted experts of a MoE layer join the
    // residual stream one layer later (DecoderModel::deferred_experts). 0 = exact.
    int64_t deferred_experts = 0;
    // A LoRA adapter to apply (PEFT folder), at this multiplier of its own alpha/r scaling.
    std::string lora_path;
    float lora_scale = 1.0f;
    // Told how loading goes (reading, then each MoE layer's experts); may be empty.
    LoadProgress progress;
};

// Loads a model from a Hugging Face folder (config.json + safetensors). Throws moe::Error
// naming the file, tensor or setting at fault.
std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions& options = {});

}  // namespace moe
