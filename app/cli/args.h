#pragma once
// Command-line parsing for moestudio-cli: positional arguments plus --name value / --flag
// options, with unknown options reported as errors.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "hybrid/placement.h"
#include "model/expert_usage.h"
#include "model/model.h"
#include "model/sampler.h"

namespace moe {
class DecoderModel;
}

namespace moecli {

class Args {
  public:
    // `flags` take no value; `options` take one. Throws moe::Error on unknown or
    // incomplete options.
    Args(const std::vector<std::string>& argv, const std::set<std::string>& flags,
         const std::set<std::string>& options);

    const std::vector<std::string>& positional() const { return positional_; }
    bool flag(const std::string& name) const { return flags_.count(name) != 0; }
    bool has(const std::string& name) const { return values_.count(name) != 0; }
    std::optional<std::string> get(const std::string& name) const;
    std::string get_or(const std::string& name, const std::string& fallback) const;
    long long get_int(const std::string& name, long long fallback) const;
    double get_double(const std::string& name, double fallback) const;

  private:
    std::vector<std::string> positional_;
    std::set<std::string> flags_;
    std::map<std::string, std::string> values_;
};

// Model-loading options shared by the commands that load a model (--rope-freq-bf16,
// --lora, --lora-scale).
moe::LoadOptions load_options(const Args& args);

// The placement a command runs with: --placement FILE.json (checked against the model), or
// one planned from --gpu-budget GiB (default 0) / --cpu-experts all|none|auto / --context N;
// planner notes go to stderr. Defined in cmd_placement.cpp.
moe::Placement placement_for(const Args& args, moe::Model& model);
// The per-layer decoder a placement is for; throws moe::Error for other model types. Defined
// in cmd_placement.cpp.
moe::DecoderModel& decoder(moe::Model& model);
// A workload's expert telemetry: --usage FILE.json, or --workload NAME with --store DB (that
// workload's counts of this model). False when neither is given. Defined in cmd_placement.cpp.
bool usage_from_args(const Args& args, const moe::Model& model, moe::ExpertUsage& usage);
// --rates FILE (from `placement calibrate`): prints the cost model's prediction for `p` on
// `model` (--defer-experts N, --prompt-tokens N, --context N, the workload's telemetry when
// given); nothing without --rates. Defined in cmd_placement_cost.cpp.
void print_prediction(const Args& args, moe::Model& model, const moe::Placement& p, bool json);
// The model to run and where its weights live: `model` itself for a CPU-only placement, else
// the hybrid CPU/GPU model made from it (--gpu-exact: fp32 activations throughout;
// --cuda-graphs on|off: decode steps replayed from a graph or launched one by one;
// --signalled-steps on|off: in those graphs the host thread runs the routing and CPU experts
// as the stream reaches them, or host-function nodes do; --prefill-chunk N; --stream-experts
// auto|never|always). Defined in cmd_placement.cpp.
struct PlacedRun {
    std::unique_ptr<moe::Model> model;
    moe::Placement placement;
};
PlacedRun place_model(const Args& args, std::unique_ptr<moe::Model> model);
// --usage-out FILE: writes the expert telemetry the model's routers gathered (JSON; `placement
// plan --usage FILE` and --gpu-budget with --usage put the most used experts on the GPU).
void save_expert_usage(const Args& args, const moe::Model& model);

// Sampling settings: the model's generation_config.json when it asks for sampling, else
// greedy; --greedy / --temperature / --top-p / --top-k / --min-p / --seed /
// --repetition-penalty override. Defined in cmd_generate.cpp.
moe::SamplingParams sampling_from(const Args& args, const std::string& model_dir);

// "1,2,3" -> {1, 2, 3}; throws moe::Error naming the option on malformed input.
std::vector<int32_t> parse_id_list(const std::string& text, const std::string& option);

}  // namespace moecli
