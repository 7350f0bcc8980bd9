#pragma once
// An adapter in PEFT's tensor layout — "<module>.lora_A" [r, in] and "<module>.lora_B" [out, r]
// per targeted module, fused expert parameters (target_parameters) as PEFT stores them — to and
// from the per-layer terms the engine runs and differentiates. The optimizer and the exporter
// work on this layout, so a fused pair's A, shared by an expert's gate and up terms, stays one
// parameter as in PEFT.
#include <map>
#include <string>
#include <vector>

#include "model/decoder_model.h"
#include "model/lora_adapter.h"
#include "train/grad_ops.h"

namespace moe::train {

using PeftTensors = std::map<std::string, std::vector<float>>;

// Gradients in PEFT's layout (a fused A sums its gate and up parts). Terms the pass never used
// (experts no token was routed to) count as zero.
PeftTensors peft_gradients(const LoraAdapter& layout, const LoraGrads& grads);

// The model's current adapter values in PEFT's layout. `layout` is resolved (see
// resolve_fused_experts) and names layers that carry exactly one term each.
PeftTensors peft_values(const LoraAdapter& layout, const DecoderModel& model);

// Writes `values` (PEFT layout, as peft_values gives) back into the model's terms.
void set_peft_values(const LoraAdapter& layout, DecoderModel& model, const PeftTensors& values);

}  // namespace moe::train
