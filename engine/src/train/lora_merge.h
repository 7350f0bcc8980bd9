#pragma once
// Merge-into-base export (issue 7): a Hugging Face checkpoint with a LoRA adapter folded into
// its weights, W' = W + s·B·A per adapted layer (s: the adapter's alpha / rank, or / sqrt(rank)
// with rsLoRA, times the user's scale), each weight kept in its own dtype, every other tensor
// and file copied: a plain model that transformers, vLLM or MoE Studio load without the adapter.
#include <cstddef>
#include <functional>
#include <string>

#include "model/lora_adapter.h"

namespace moe::train {

struct MergeReport {
    size_t merged = 0;  // weights the adapter changed
    size_t copied = 0;  // tensors written unchanged
};

// `hf_dir`: a safetensors folder (config.json + *.safetensors). Writes `out_dir` (created;
// one model.safetensors, the other files of hf_dir but the shard index). Throws moe::Error
// naming the layer or file for: a GGUF base, an adapter layer without a [out, in] weight of
// its shape in the checkpoint, and weights in other dtypes than F32, BF16 or F16. Adapters on
// fused expert parameters (target_parameters) must be resolved first (resolve_fused_experts):
// their per-expert pairs then merge into the checkpoint's per-expert weights.
// `progress(done, total)`: after each tensor written.
MergeReport merge_lora_into_folder(const std::string& hf_dir, const LoraAdapter& adapter,
                                   float scale, const std::string& out_dir,
                                   const std::function<void(size_t, size_t)>& progress = {});

}  // namespace moe::train
