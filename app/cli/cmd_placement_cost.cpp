// placement calibrate / predict, and the prediction `placement plan --rates` prints: the cost
// model of issue 8 (hybrid/cost_model.h) with rates measured on this machine
// (hybrid/calibration.h).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "core/parallel.h"
#include "hybrid/calibration.h"
#include "hybrid/cost_model.h"
#include "hybrid/hybrid_model.h"
#include "hybrid/placement_planner.h"
#include "model/decoder_model.h"

namespace moecli {

void print_prediction(const Args& args, moe::Model& model, const moe::Placement& p, bool json) {
    if (!args.has("rates")) return;
    const moe::MachineRates rates = moe::MachineRates::load(*args.get("rates"));
    moe::ExpertUsage usage;
    const bool have_usage = usage_from_args(args, model, usage);
    moe::CostOptions o;
    o.deferred_experts = args.get_int("defer-experts", 0);
    o.prompt_tokens = args.get_int("prompt-tokens", o.prompt_tokens);
    o.context = args.get_int("context", o.context);
    const moe::SpeedPrediction s = moe::predict_speed(moe::measure_cost_shape(decoder(model)), p,
                                                      have_usage ? &usage : nullptr, rates, o);
    if (json) {
        std::printf("%s\n", nlohmann::json{{"prediction", s.to_json()}}.dump(1).c_str());
    } else {
        std::printf("predicted: %s\n", s.summary().c_str());
    }
    for (const std::string& n : s.notes) std::fprintf(stderr, "prediction: %s\n", n.c_str());
    if (!rates.machine.empty())
        std::fprintf(stderr, "prediction: rates measured on %s\n", rates.machine.c_str());
}

int placement_calibrate(const std::vector<std::string>& argv) {
    const Args args(argv, {"quiet"},
                    {"out", "gpu-budget", "threads", "expert-format", "steps", "prompt-tokens"});
    if (args.positional().size() != 1 || !args.has("out"))
        throw moe::Error(
            "usage: moestudio-cli placement calibrate MODEL --out RATES.json [--gpu-budget GiB] "
            "[--threads N] [--expert-format F] [--steps N] [--prompt-tokens N]");
    if (args.has("threads")) moe::set_parallel_threads(int(args.get_int("threads", 0)));
    const std::string path = args.positional()[0];
    moe::LoadOptions lo = load_options(args);
    auto model = moe::load_model(path, lo);
    moe::CalibrationOptions co;
    co.decode_steps = int(args.get_int("steps", co.decode_steps));
    co.prompt_tokens = args.get_int("prompt-tokens", co.prompt_tokens);
    if (!args.flag("quiet"))
        co.progress = [](const std::string& what) {
            std::fprintf(stderr, "calibrating: %s\n", what.c_str());
        };
    moe::MachineRates rates = moe::calibrate_cpu(decoder(*model), co);
    rates.expert_format = lo.expert_format;
    const double gib = args.get_double("gpu-budget", 0.0);
    if (gib > 0) {
        moe::PlanOptions po;
        po.gpu_budget = uint64_t(gib * double(1ull << 30));
        po.cpu_experts = moe::CpuExperts::All;
        const moe::Placement cpu =
            moe::plan_placement(moe::measure_footprint(decoder(*model)), po).placement;
        auto placed = moe::make_hybrid_model(std::move(model), cpu);
        moe::calibrate_gpu(*placed, po.gpu_budget, rates, co);
    }
    rates.save(*args.get("out"));
    std::printf("%s\n", rates.to_json().dump(1).c_str());
    return 0;
}

}  // namespace moecli
