#include "train/train_step.h"

#include "train/lora_gradients.h"
#include "train/peft_layout.h"

namespace moe::train {

StepResult train_step(DecoderModel& model, const LoraAdapter& layout, AdamW& optimizer,
                      std::span<const int32_t> tokens, std::span<const int32_t> labels, double lr,
                      double max_grad_norm) {
    const LossAndGrads lg = lora_loss_and_grads(model, tokens, labels);
    PeftTensors grads = peft_gradients(layout, lg.grads);
    StepResult r;
    r.loss = lg.loss;
    r.grad_norm = clip_grad_norm(grads, max_grad_norm);
    PeftTensors values = peft_values(layout, model);
    optimizer.step(values, grads, lr);
    set_peft_values(layout, model, values);
    return r;
}

}  // namespace moe::train
