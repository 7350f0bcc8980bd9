#pragma once
// Saves an adapter as a llama.cpp LoRA GGUF (general.type = adapter, adapter.type = lora,
// adapter.lora.alpha; tensors blk.N.<name>.weight.lora_a [r, in] and .lora_b [out, r], F32), as
// convert_lora_to_gguf.py writes them, so that llama.cpp's --lora applies what the engine
// trained. The model must have been loaded from a GGUF file (its tensors are then already in
// llama.cpp's layout: Llama's q/k rows permuted for its rotary pairing).
#include <string>

#include "model/decoder_model.h"
#include "model/lora_adapter.h"
#include "train/peft_layout.h"

namespace moe::train {

// Throws moe::Error when a layer has no GGUF name (routed-expert terms, MLA's kv_b_proj), the
// adapters' alphas differ (the format holds one), or the model did not come from a GGUF file.
void save_gguf_adapter(const std::string& path, const LoraAdapter& layout,
                       const PeftTensors& values, const DecoderModel& model);

}  // namespace moe::train
