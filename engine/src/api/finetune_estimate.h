#pragma once
// What a fine-tune will need of this machine (issue 10), for the wizard's "fits this machine",
// its LoRA page (the memory each target adds) and its review page, from the model's shapes and
// the spec, before anything runs. The figures follow what the trainer (train/lora_trainer.h,
// CPU reference path) keeps:
//   - base weights: the model's files, memory-mapped and read in place every step (the page
//     cache holds them: RAM when they fit, the disk on every step when they do not);
//   - adapter: fp32 values (the master copy) 4 B, AdamW's two moments 8 B, and the gradients
//     16 B per parameter (this sequence's, the accumulated ones, and the PEFT-layout gradients
//     and values the optimizer step works on);
//   - activations of one sequence of `cutoff` tokens: every layer's tape (train/block_grads.h:
//     attention projections before and after norms and rotation, attention probabilities,
//     MLP/expert inputs, gate, up and activation, the routed slots' outputs) and the logits
//     with their gradient; with gradient checkpointing only each layer's input plus one
//     layer's tape;
//   - VRAM: none, the trainer runs on the CPU in this version.
// Time per step comes from an earlier run of the same model in the store (measured tokens/s)
// when there is one, else from the step's arithmetic at an assumed CPU rate, bounded below by
// reading the weights at the calibrated rate (machine_rates.json) when there is one.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/finetune_spec.h"
#include "model/decoder_model.h"

namespace moe {

// The model's sizes as the estimate reads them.
struct FinetuneShapes {
    std::string architecture;
    int64_t hidden = 0, vocab = 0;
    int64_t params_total = 0, params_active = 0;  // ModelInfo's
    uint64_t weight_bytes = 0;                    // the model's files
    // LoRA parameters per unit of rank: sum of (in + out) of the non-routed linear layers by
    // their last name component (q_proj, gate_proj, ...; routers and the head excluded).
    std::map<std::string, int64_t> linear_io;
    int64_t experts_io = 0;  // routed experts, PEFT's fused layout: E ((H + 2I) + (I + H))
    int64_t router_io = 0;   // routers: H + E per MoE layer
    // Per layer: fp32 values its tape keeps per token (without the attention probabilities),
    // attention heads (probabilities: heads x T per token), and the width of Q plus that of the
    // attention's output (the attention products' arithmetic).
    struct Layer {
        int64_t tape_values = 0, heads = 0, attention_width = 0;
    };
    std::vector<Layer> layers;
};

// From a loaded model (`weight_bytes`: the size of its files).
FinetuneShapes measure_finetune_shapes(DecoderModel& model, uint64_t weight_bytes);
// Loads the model's structure with its weights mapped in place (nothing is copied) and
// measures it. Throws moe::Error as load_model does.
FinetuneShapes load_finetune_shapes(const std::string& model_path);

// What the estimate knows of the data and of this machine.
struct EstimateInputs {
    int64_t sequences = 0;             // training sequences (0: unknown)
    double tokens_per_sequence = 0;    // their mean length (0: the cut-off)
    uint64_t ram_available = 0;        // bytes (0: unknown)
    uint64_t vram_total = 0;           // the GPUs' memory (0: none)
    double measured_tokens_per_s = 0;  // an earlier run of this model (0: none)
    std::string measured_from;         // "run 4"
    double weight_bytes_per_s = 0;     // MachineRates::cpu_dense_bytes_per_s (0: not calibrated)
    // The CPU reference path's fp32 arithmetic rate, an assumption used without a measured run.
    double assumed_flops_per_s = 20e9;
};

// The memory one group of LoRA targets adds (attention, dense/shared MLP, routed experts,
// routers).
struct TargetCost {
    std::string group;                 // attention, mlp, experts, router
    std::vector<std::string> targets;  // the target names of the group the model has
    int64_t params = 0;                // at the spec's rank
    uint64_t bytes = 0;                // values, moments and gradients
    bool selected = false;             // in the spec's targets
};

struct FinetuneEstimate {
    uint64_t weight_bytes = 0;  // mapped
    int64_t adapter_params = 0;
    uint64_t adapter_bytes = 0, optimizer_bytes = 0, gradient_bytes = 0, activation_bytes = 0;
    uint64_t ram_bytes = 0;      // all of the above
    uint64_t working_bytes = 0;  // all but the mapped weights
    uint64_t vram_bytes = 0;     // the trainer runs on the CPU
    std::vector<TargetCost> targets;
    int64_t sequence_tokens = 0;  // the activations' sequence length (the cut-off)
    int64_t steps = 0;            // 0: unknown (no data yet)
    double tokens_per_step = 0, flops_per_step = 0, step_seconds = 0, total_seconds = 0;
    std::string time_basis;  // measured or assumed, in words
    uint64_t ram_available = 0, vram_total = 0;
    bool fits = false;          // the working memory and the weights fit the available RAM
    bool fits_working = false;  // the working memory does (the weights then come from disk)
    std::string verdict;        // one line with the numbers

    nlohmann::json to_json() const;
    std::string summary() const;  // several lines for the review page
};

// Pure: the figures for `spec` on a model of `shapes` with `in`.
FinetuneEstimate estimate_finetune(const FinetuneShapes& shapes, const FinetuneSpec& spec,
                                   const EstimateInputs& in);

// This machine's side of the inputs: available memory, the GPUs' memory, the calibrated rates
// kept beside `store_path` (machine_rates.json) and the newest earlier run of spec.model in
// the store with measured steps. Missing pieces stay 0.
EstimateInputs machine_estimate_inputs(const FinetuneSpec& spec, const std::string& store_path);

}  // namespace moe
