#pragma once
// AdamW as torch.optim.AdamW computes it (decoupled weight decay, bias-corrected moments, eps
// added after the bias correction of the second moment), on fp32 master copies of the adapter
// tensors in PEFT's layout; plus global-norm gradient clipping and the learning-rate schedules.
#include <cstdint>
#include <string>

#include "train/peft_layout.h"

namespace moe::train {

struct AdamWConfig {
    double lr = 1e-4;  // peak; the schedule scales it per step
    double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    double weight_decay = 0.0;
};

class AdamW {
  public:
    explicit AdamW(AdamWConfig c) : c_(c) {}
    // One step on `params` with `grads` (same names and sizes; a missing gradient is zero, as
    // for a fused expert tensor whose experts no token was routed to) at learning rate `lr`.
    void step(PeftTensors& params, const PeftTensors& grads, double lr);
    int64_t steps() const { return t_; }
    const AdamWConfig& config() const { return c_; }
    // Moments, for checkpoints ("<name>.m" / "<name>.v").
    const PeftTensors& moments() const { return state_; }
    void restore(PeftTensors moments, int64_t steps) {
        state_ = std::move(moments);
        t_ = steps;
    }

  private:
    AdamWConfig c_;
    int64_t t_ = 0;
    PeftTensors state_;
};

// Scales every gradient so that their global L2 norm is at most `max_norm` (0: no clipping),
// as torch.nn.utils.clip_grad_norm_; returns the norm before clipping.
double clip_grad_norm(PeftTensors& grads, double max_norm);

// Learning rate for the update at `step` (0-based) of `total`: linear warm-up from 0 over
// `warmup` steps, then constant, linear decay to 0, or cosine decay to 0 (transformers'
// schedules, factor for factor).
enum class LrSchedule { Constant, Linear, Cosine };
LrSchedule parse_lr_schedule(const std::string& s);  // "constant", "linear", "cosine"
double scheduled_lr(LrSchedule s, double peak, int64_t step, int64_t warmup, int64_t total);

}  // namespace moe::train
