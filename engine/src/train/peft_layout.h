#pragma once
// An adapter's gradients (or values) in PEFT's tensor layout: "<module>.lora_A" [r, in] and
// "<module>.lora_B" [out, r] per targeted module, and fused expert parameters
// (target_parameters) reassembled from the per-expert terms the engine trains.
#include <map>
#include <string>
#include <vector>

#include "model/lora_adapter.h"
#include "train/grad_ops.h"

namespace moe::train {

// Terms the model never used in the pass (experts no token was routed to) count as zero.
std::map<std::string, std::vector<float>> peft_layout(const LoraAdapter& adapter,
                                                      const LoraGrads& grads);

}  // namespace moe::train
