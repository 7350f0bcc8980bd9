#include <cstdio>
#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "model/model.h"

namespace moecli {

int cmd_info(const std::vector<std::string>& argv) {
    const Args args(argv, {"rope-freq-bf16", "llamacpp-attention"},
                    {"lora", "lora-scale", "expert-format"});
    if (args.positional().size() != 1) throw moe::Error("usage: moestudio-cli info MODEL");
    const auto model = moe::load_model(args.positional()[0], load_options(args));
    const moe::ModelInfo& i = model->info();
    const nlohmann::json j = {
        {"architecture", i.architecture},
        {"path", i.path},
        {"layers", i.layers},
        {"hidden_size", i.hidden_size},
        {"vocab_size", i.vocab_size},
        {"experts", i.experts},
        {"experts_per_token", i.experts_per_token},
        {"moe_layers", i.moe_layers},
        {"parameters", {{"total", i.params_total}, {"active", i.params_active}}},
        {"dtype", i.dtype},
        {"cpu_experts", {{"format", i.expert_format}, {"numa_parts", i.expert_numa_parts}}},
        {"max_context", i.max_context},
        {"eos_token_ids", i.eos_token_ids},
    };
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
}

}  // namespace moecli
