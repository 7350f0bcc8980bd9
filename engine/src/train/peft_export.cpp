#include "train/peft_export.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "formats/safetensors.h"

namespace moe::train {

namespace {

std::string last_component(const std::string& module) {
    const auto dot = module.rfind('.');
    return dot == std::string::npos ? module : module.substr(dot + 1);
}

}  // namespace

void save_peft_adapter(const std::string& dir, const LoraAdapter& layout, const PeftTensors& values,
                       const std::string& base_model_class) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw Error(dir + ": cannot create the adapter folder: " + ec.message());

    std::set<std::string> fused_members, target_modules, target_params;
    std::map<std::string, std::pair<int64_t, float>> fused_rank_alpha;  // by parameter
    for (const FusedExpertLora& f : layout.fused) {
        target_params.insert(f.param);
        const auto it = layout.layers.find(f.member(0, f.param == "down_proj" ? f.down : f.gate));
        require(it != layout.layers.end(), "adapter layout: fused pair without its expert terms");
        fused_rank_alpha[f.param] = {f.rank, it->second.alpha};
        for (int64_t e = 0; e < f.experts_count; ++e)
            for (const std::string& n : {f.gate, f.up, f.down})
                fused_members.insert(f.member(e, n));
    }
    // The most common rank and alpha become r and lora_alpha; the others go to the patterns.
    std::map<std::pair<int64_t, float>, int> votes;
    for (const auto& [module, p] : layout.layers)
        if (!fused_members.count(module)) ++votes[{p.rank, p.alpha}];
    for (const auto& [param, ra] : fused_rank_alpha) ++votes[ra];
    require(!votes.empty(), "adapter layout holds no layers");
    const auto common = std::max_element(votes.begin(), votes.end(), [](auto& a, auto& b) {
                            return a.second < b.second;
                        })->first;
    nlohmann::json rank_pattern = nlohmann::json::object(),
                   alpha_pattern = nlohmann::json::object();

    std::vector<TensorToWrite> tensors;
    const auto add = [&](const std::string& key, std::vector<int64_t> shape) {
        const auto it = values.find(key);
        if (it == values.end()) throw Error("adapter export: tensor '" + key + "' is missing");
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        require(int64_t(it->second.size()) == n,
                "adapter export: '" + key + "' has the wrong size");
        const std::string ab = key.substr(key.size() - 6);  // lora_A / lora_B
        tensors.push_back(
            {"base_model.model." + key.substr(0, key.size() - 7) + "." + ab + ".weight", DType::F32,
             std::move(shape), it->second.data()});
    };
    for (const auto& [module, p] : layout.layers) {
        if (fused_members.count(module)) continue;
        target_modules.insert(last_component(module));
        if (std::make_pair(p.rank, p.alpha) != common) {
            rank_pattern[module] = p.rank;
            alpha_pattern[module] = p.alpha;
        }
        add(module + ".lora_A", {p.rank, p.in});
        add(module + ".lora_B", {p.out, p.rank});
    }
    for (const FusedExpertLora& f : layout.fused) {
        if (fused_rank_alpha[f.param] != common) {
            rank_pattern[".*\\." + f.param] = f.rank;
            alpha_pattern[".*\\." + f.param] = fused_rank_alpha[f.param].second;
        }
        add(f.peft_module + ".lora_A", {f.experts_count * f.rank, f.in});
        add(f.peft_module + ".lora_B", {f.out, f.rank * f.experts_count});
    }

    nlohmann::json cfg;
    cfg["peft_type"] = "LORA";
    cfg["task_type"] = "CAUSAL_LM";
    cfg["r"] = common.first;
    cfg["lora_alpha"] = common.second;
    cfg["lora_dropout"] = 0.0;
    cfg["bias"] = "none";
    cfg["use_rslora"] = layout.use_rslora;
    cfg["use_dora"] = false;
    cfg["fan_in_fan_out"] = false;
    cfg["init_lora_weights"] = true;
    cfg["inference_mode"] = true;
    cfg["target_modules"] = std::vector<std::string>(target_modules.begin(), target_modules.end());
    if (!target_params.empty())
        cfg["target_parameters"] =
            std::vector<std::string>(target_params.begin(), target_params.end());
    cfg["rank_pattern"] = rank_pattern;
    cfg["alpha_pattern"] = alpha_pattern;
    cfg["base_model_name_or_path"] = nullptr;
    if (!base_model_class.empty()) cfg["auto_mapping"] = {{"base_model_class", base_model_class}};

    const fs::path cfg_path = fs::path(dir) / "adapter_config.json";
    const fs::path tmp = fs::path(dir) / "adapter_config.json.tmp";
    {
        std::ofstream out(tmp);
        out << cfg.dump(2) << "\n";
        if (!out) throw Error(tmp.string() + ": cannot write");
    }
    write_safetensors((fs::path(dir) / "adapter_model.safetensors").string(), tensors,
                      {{"format", "pt"}});
    fs::rename(tmp, cfg_path, ec);
    if (ec) throw Error(cfg_path.string() + ": cannot write: " + ec.message());
}

}  // namespace moe::train
