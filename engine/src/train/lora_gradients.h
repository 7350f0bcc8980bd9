#pragma once
// The training loss of one sequence and the gradient of every LoRA term of a loaded model
// (fp32 on the CPU, activations kept for the whole sequence): the reference the LoRA trainer
// builds on, checked against PEFT's gradients on the hf-tiny fixtures.
#include <cstdint>
#include <span>

#include "model/decoder_model.h"
#include "train/grad_ops.h"

namespace moe::train {

struct LossAndGrads {
    double loss = 0;
    LoraGrads grads;  // by module name; only layers with adapter terms
};

// Mean next-token cross-entropy over the positions whose next label is not -100 (labels as
// transformers takes them: same length as tokens, shifted inside). Throws moe::Error for blocks
// without a backward pass (MLA over GGUF's split k_b/v_b), expert deferral, or mismatched
// lengths.
// The same loss without the gradients (evaluation: no tapes kept, no backward pass).
double lora_loss(const DecoderModel& model, std::span<const int32_t> tokens,
                 std::span<const int32_t> labels);

// `checkpoint`: gradient checkpointing (each layer run again in the backward pass; activation
// memory of one layer; the same gradients).
LossAndGrads lora_loss_and_grads(const DecoderModel& model, std::span<const int32_t> tokens,
                                 std::span<const int32_t> labels, bool checkpoint = false);

}  // namespace moe::train
