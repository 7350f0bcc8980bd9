#include "model/lora_adapter.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "formats/safetensors.h"
#include "model/decoder_model.h"

namespace moe {

namespace {

std::vector<float> to_f32(const TensorView& t) {
    std::vector<float> v(static_cast<size_t>(t.numel()));
    convert_to_f32(t.dtype, t.data, v.data(), v.size());
    return v;
}

}  // namespace

LoraAdapter load_peft_adapter(const std::string& dir) {
    namespace fs = std::filesystem;
    const fs::path cfg_path = fs::path(dir) / "adapter_config.json";
    std::ifstream in(cfg_path);
    if (!in) throw Error(dir + ": no adapter_config.json (expected a PEFT LoRA adapter folder)");
    nlohmann::json cfg;
    try {
        cfg = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        throw Error(cfg_path.string() + ": not valid JSON: " + e.what());
    }
    const std::string type = cfg.value("peft_type", "LORA");
    if (type != "LORA") throw Error(cfg_path.string() + ": peft_type '" + type + "' is not LoRA");
    if (cfg.value("use_dora", false)) throw Error(cfg_path.string() + ": DoRA adapters are not supported");
    const auto& tp = cfg.value("target_parameters", nlohmann::json());
    if (tp.is_array() && !tp.empty()) {
        throw Error(cfg_path.string() + ": routed-expert LoRA (target_parameters " + tp.dump() +
                    ") is not supported for inference yet");
    }
    LoraAdapter ad;
    ad.origin = dir;
    ad.use_rslora = cfg.value("use_rslora", false);
    const float default_alpha = cfg.value("lora_alpha", 8.0f);
    const auto alpha_pattern = cfg.value("alpha_pattern", nlohmann::json::object());
    const fs::path weights = fs::path(dir) / "adapter_model.safetensors";
    if (!fs::exists(weights)) {
        throw Error(dir + ": no adapter_model.safetensors (PyTorch .bin adapters are not read; "
                          "re-save with safe_serialization=True)");
    }
    const auto file = SafetensorsFile::open(weights.string());
    // PEFT names: base_model.model.<module>.lora_A.weight (older files add ".default").
    for (const auto& [name, t] : file->tensors()) {
        const auto pos = name.find(".lora_A.");
        if (pos == std::string::npos) {
            if (name.find(".lora_B.") == std::string::npos) {
                throw Error(weights.string() + ": unexpected tensor '" + name + "' (only LoRA A/B)");
            }
            continue;
        }
        std::string module = name.substr(0, pos);
        if (module.rfind("base_model.model.", 0) == 0) module = module.substr(17);
        std::string b_name = name;
        b_name.replace(pos, 8, ".lora_B.");
        const auto bit = file->tensors().find(b_name);
        if (bit == file->tensors().end()) throw Error(weights.string() + ": '" + name + "' has no matching '" + b_name + "'");
        const TensorView& a = t;
        const TensorView& b = bit->second;
        if (a.shape.size() != 2 || b.shape.size() != 2 || a.shape[0] != b.shape[1]) {
            throw Error(weights.string() + ": " + a.describe() + " and " + b.describe() +
                        " are not a LoRA pair (A [r, in], B [out, r])");
        }
        LoraPair p;
        p.rank = a.shape[0];
        p.in = a.shape[1];
        p.out = b.shape[0];
        p.a = to_f32(a);
        p.b = to_f32(b);
        p.alpha = default_alpha;
        for (auto it = alpha_pattern.begin(); it != alpha_pattern.end(); ++it) {
            if (module.ends_with(it.key()) || module.find(it.key()) != std::string::npos) p.alpha = it->get<float>();
        }
        ad.layers[module] = std::move(p);
    }
    if (ad.layers.empty()) throw Error(weights.string() + ": holds no LoRA tensors");
    return ad;
}

void apply_lora(DecoderModel& model, const LoraAdapter& adapter, float scale) {
    std::map<std::string, Linear*> by_name;
    model.visit_linears([&](Linear& l) { by_name[l.name] = &l; });
    for (const auto& [module, p] : adapter.layers) {
        const auto it = by_name.find(module);
        if (it == by_name.end()) {
            throw Error(adapter.origin + ": adapter layer '" + module + "' is not a linear layer of " +
                        model.info().path);
        }
        Linear& l = *it->second;
        if (l.in_features() != p.in || l.out_features() != p.out) {
            throw Error(adapter.origin + ": adapter layer '" + module + "' is [" + std::to_string(p.out) +
                        " x " + std::to_string(p.in) + "] but the model's layer is [" +
                        std::to_string(l.out_features()) + " x " + std::to_string(l.in_features()) + "]");
        }
        LoraTerm term;
        term.rank = p.rank;
        term.a = p.a;
        term.b = p.b;
        const float denom = adapter.use_rslora ? std::sqrt(float(p.rank)) : float(p.rank);
        term.scale = scale * p.alpha / denom;
        l.lora.push_back(std::move(term));
        if (l.reads_weight_directly) l.merge_lora();
    }
}

}  // namespace moe
