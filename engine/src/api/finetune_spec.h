#pragma once
// What a LoRA fine-tune is asked to do (issue 10): the one description shared by
// `moestudio-cli train` (its flags) and the app's wizard (its config file), so that the
// wizard's review page shows a command the CLI runs to the same result, and a config saved by
// one is loaded by the other. The config file is a JSON object whose keys are the CLI's flag
// names without "--" ({"model": ..., "data": [...], "rank": 8, ...}).
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/field_map.h"

namespace moe {

struct FinetuneSpec {
    std::string model;              // model folder or .gguf
    std::vector<std::string> data;  // dataset files (trained on as one dataset)
    std::string format = "auto";    // auto, text, alpaca, messages, sharegpt
    double eval_fraction = 0.0;     // share of records held out for evaluation
    int64_t cutoff = 1024;          // tokens per sequence at most
    bool packing = false;
    bool train_on_prompt = false;  // false: the loss covers the assistant's tokens only
    // The dataset's names for the fields the format expects ("field-map": {"instruction":
    // "question"}; --field-map instruction=question,output=answer).
    train::FieldMap field_map;

    // LoRA. `adapter`: continue training this PEFT folder (its layout wins over rank/targets).
    std::vector<std::string> targets = {"q_proj", "k_proj", "v_proj", "o_proj"};
    int64_t rank = 8;
    double alpha = 16.0;
    double dropout = 0.0;  // only 0: the trainer applies no dropout yet (refused otherwise)
    std::string adapter;

    // Optimisation. One micro-batch is one sequence (packing fills it); grad_accum of them make
    // an optimizer step.
    double lr = 2e-4;
    std::string schedule = "cosine";  // cosine, linear, constant
    int64_t warmup = 0;
    int64_t epochs = 1;
    int64_t steps = 0;  // 0: epochs over the data
    int64_t grad_accum = 1;
    double max_grad_norm = 1.0;
    double weight_decay = 0.0;
    uint64_t seed = 0;
    int64_t eval_every = 0;  // steps; 0: at the end
    int64_t save_every = 0;  // steps; 0: no intermediate checkpoints
    bool gradient_checkpointing = false;
    bool rope_freq_bf16 = false;

    std::string out;     // checkpoints, metrics.jsonl and the final adapter/
    std::string resume;  // a checkpoint folder to continue from
    std::string store;   // MoE Studio's database: the run and its metrics ("" = none)

    // The config file's JSON (every field, defaults included, so it documents itself).
    nlohmann::json to_json() const;
    // Keys as in to_json(); absent keys keep their defaults, unknown keys are an error (a typo
    // must not silently train with a default). Throws moe::Error.
    static FinetuneSpec from_json(const nlohmann::json& j);
    // `moestudio-cli train` arguments after "train": MODEL then flags (defaults left out).
    std::vector<std::string> to_args() const;
    // The same as one shell line ("moestudio-cli train MODEL --data ..."), quoted where needed.
    std::string command_line() const;
    // Parses `train`'s arguments: [MODEL] [--config FILE] flags. The config file is read first
    // and flags override it. Throws moe::Error naming the bad flag.
    static FinetuneSpec from_args(const std::vector<std::string>& argv);

    // The checks that need no file: required fields, ranges, names. Throws moe::Error.
    void check() const;
};

// The `train` flags this spec understands (for the CLI's usage text and its own flags).
const char* finetune_usage();

}  // namespace moe
