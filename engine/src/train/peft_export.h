#pragma once
// Saves an adapter as a PEFT folder (adapter_config.json + adapter_model.safetensors, fp32,
// PEFT 0.21 names "base_model.model.<module>.lora_A.weight"), fused expert tensors under
// target_parameters, so that peft's PeftModel.from_pretrained loads what the engine trained.
#include <string>

#include "model/lora_adapter.h"
#include "train/peft_layout.h"

namespace moe::train {

// `layout`: resolved (resolve_fused_experts); `values`: peft_values(). Creates `dir` if needed
// and replaces both files (written to temporary names, then renamed). Throws moe::Error naming
// the file on failure.
void save_peft_adapter(const std::string& dir, const LoraAdapter& layout, const PeftTensors& values,
                       const std::string& base_model_class = "");

}  // namespace moe::train
