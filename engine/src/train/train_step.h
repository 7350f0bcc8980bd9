#pragma once
// One optimisation step of the adapter terms of a loaded model on one sequence: loss and
// gradients (lora_gradients.h), gradients and values in PEFT's layout, global-norm clipping,
// an AdamW update, the new values written back into the model's terms.
#include <cstdint>
#include <span>

#include "model/decoder_model.h"
#include "model/lora_adapter.h"
#include "train/adamw.h"

namespace moe::train {

struct StepResult {
    double loss = 0;       // before the update
    double grad_norm = 0;  // before clipping
};

// `layout`: the adapter the model carries, resolved (resolve_fused_experts).
StepResult train_step(DecoderModel& model, const LoraAdapter& layout, AdamW& optimizer,
                      std::span<const int32_t> tokens, std::span<const int32_t> labels, double lr,
                      double max_grad_norm = 0.0);

}  // namespace moe::train
