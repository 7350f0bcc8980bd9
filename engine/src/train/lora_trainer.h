#pragma once
// LoRA fine-tuning of a loaded model (CPU reference path; issue 7): a new adapter with PEFT's
// initialisation or one loaded from PEFT, AdamW with a learning-rate schedule, gradient
// clipping and accumulation, deterministic order of examples from a seed, evaluation on a
// held-out part, checkpoints that resume to the same subsequent losses, and the trained
// adapter saved as a PEFT folder. Metrics go to a callback and to out_dir/metrics.jsonl.
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "model/decoder_model.h"
#include "model/lora_adapter.h"
#include "train/adamw.h"
#include "train/dataset.h"

namespace moe::train {

struct NewAdapterOptions {
    // Last name components of the linear layers to adapt (q_proj, k_proj, v_proj, o_proj,
    // gate_proj, up_proj, down_proj, MLA's q_a_proj, q_b_proj, kv_a_proj_with_mqa, kv_b_proj);
    // "experts" adapts the routed experts in PEFT's fused layout (gate_up_proj, down_proj);
    // "router" the MoE routers (frozen otherwise).
    std::vector<std::string> targets = {"q_proj", "k_proj", "v_proj", "o_proj"};
    int64_t rank = 8;
    float alpha = 16.0f;
    uint64_t seed = 0;
};

// Builds the adapter and adds its terms to `model`: A ~ U(-1/sqrt(in), 1/sqrt(in)) (PEFT's
// kaiming-uniform), B = 0, so the model's output is unchanged until trained. Throws moe::Error
// when a target matches no layer.
LoraAdapter add_new_adapter(DecoderModel& model, const NewAdapterOptions& options);

struct TrainConfig {
    AdamWConfig adamw;
    LrSchedule schedule = LrSchedule::Cosine;
    int64_t warmup_steps = 0;
    int64_t epochs = 1;
    int64_t max_steps = 0;  // 0: epochs * examples / grad_accum
    int64_t grad_accum = 1;
    double max_grad_norm = 1.0;  // 0: no clipping
    uint64_t seed = 0;
    bool gradient_checkpointing = false;  // recompute each layer in the backward pass
    int64_t eval_every = 0;               // steps; 0: at the end only (when there is eval data)
    int64_t save_every = 0;               // steps; 0: the final adapter only
    std::string out_dir;                  // checkpoints, metrics.jsonl and the final adapter/
};

struct StepMetrics {
    int64_t step = 0, total_steps = 0;  // step counts from 1
    double loss = 0, lr = 0, grad_norm = 0;
    double step_seconds = 0, tokens_per_s = 0;
    double eval_loss = std::numeric_limits<double>::quiet_NaN();  // when evaluated this step
};

class LoraTrainer {
  public:
    // `layout`: the adapter the model carries (add_new_adapter, or a resolved PEFT adapter).
    LoraTrainer(DecoderModel& model, LoraAdapter layout, TrainConfig config);

    // Trains until total_steps (or until on_step returns false). Saves checkpoints and, at
    // the end, out_dir/adapter. Returns the metrics of the last step.
    StepMetrics run(const Dataset& data, const std::function<bool(const StepMetrics&)>& on_step);
    // Mean loss over `examples` (no update).
    double evaluate(const std::vector<Example>& examples) const;
    int64_t total_steps(const Dataset& data) const;
    int64_t step() const { return step_; }
    const LoraAdapter& layout() const { return layout_; }

    // dir/adapter (PEFT folder), dir/optimizer.safetensors (moments), dir/trainer_state.json and
    // dir/checksums.json; written in dir.partial and renamed, so that dir is always complete.
    void save_checkpoint(const std::string& dir) const;
    // Throws moe::Error naming the file when a checkpoint's files differ from its
    // checksums.json (resume() checks this first).
    static void verify_checkpoint(const std::string& dir);
    // Restores the adapter values, the optimizer and the step of a checkpoint of this layout.
    void resume(const std::string& dir);

  private:
    const Example& example_at(const Dataset& data, int64_t index) const;

    DecoderModel& model_;
    LoraAdapter layout_;
    TrainConfig cfg_;
    AdamW opt_;
    int64_t step_ = 0;
};

}  // namespace moe::train
