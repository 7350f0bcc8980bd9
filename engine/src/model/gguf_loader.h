#pragma once
// GGUF models as the architectures see them: the file's metadata becomes a config.json
// equivalent (HfConfig) and its tensors are presented under Hugging Face names (merged expert
// tensors split per expert, views into the mapping, nothing copied), so that one builder per
// architecture serves both formats.
#include <memory>
#include <string>

#include "formats/gguf.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"

namespace moe {

struct GgufModelSource {
    std::shared_ptr<GgufFile> file;
    HfConfig config;
    WeightStore weights;
};

// Maps llama.cpp's architectures llama (dense and Mixtral-style experts), qwen3moe, qwen2moe,
// olmoe, deepseek2, glm4moe and gpt-oss. Throws moe::Error naming the file and the key or
// tensor at fault, or the unsupported architecture.
GgufModelSource open_gguf_model(const std::string& path);

// The Hugging Face module name ("model.layers.3.self_attn.q_proj") of a llama.cpp tensor name
// ("blk.3.attn_q"), used for GGUF LoRA adapters; empty when there is none.
std::string hf_module_name(const std::string& gguf_arch, const std::string& gguf_name);
// The inverse: the GGUF stem of a Hugging Face per-layer module ("model.layers.3.self_attn.q_proj"
// -> "blk.3.attn_q", "lm_head" -> "output"); "" when GGUF has no such tensor.
std::string gguf_module_stem(const std::string& hf_module);

}  // namespace moe
