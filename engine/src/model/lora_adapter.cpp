#include "model/lora_adapter.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "cpu/quants.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "model/decoder_model.h"
#include "model/gguf_loader.h"
#include "model/moe_block.h"

namespace moe {

namespace {

std::vector<float> to_f32(const TensorView& t) {
    std::vector<float> v(static_cast<size_t>(t.numel()));
    convert_to_f32(t.dtype, t.data, v.data(), v.size());
    return v;
}

// PEFT nests one wrapper per targeted parameter: <...>.experts for the last of
// target_parameters, <...>.experts.base_layer for the one before, and so on.
bool is_fused_experts(std::string module) {
    while (module.ends_with(".base_layer")) module.resize(module.size() - 11);
    return module.ends_with(".experts");
}

// rank_pattern / alpha_pattern keys are regular expressions such as ".*\\.gate_up_proj".
template <class T>
T pattern_value(const nlohmann::json& patterns, const std::string& param, T fallback) {
    if (!patterns.is_object()) return fallback;
    for (auto it = patterns.begin(); it != patterns.end(); ++it) {
        const std::string& key = it.key();
        if (key == param || key.ends_with("." + param) || key.ends_with("\\." + param))
            return it->get<T>();
    }
    return fallback;
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
    if (cfg.value("use_dora", false))
        throw Error(cfg_path.string() + ": DoRA adapters are not supported");
    std::vector<std::string> target_params;
    if (const auto& tp = cfg.value("target_parameters", nlohmann::json()); tp.is_array()) {
        for (const auto& v : tp) target_params.push_back(v.get<std::string>());
    }
    LoraAdapter ad;
    ad.origin = dir;
    ad.use_rslora = cfg.value("use_rslora", false);
    const float default_alpha = cfg.value("lora_alpha", 8.0f);
    const auto alpha_pattern = cfg.value("alpha_pattern", nlohmann::json::object());
    const fs::path weights = fs::path(dir) / "adapter_model.safetensors";
    if (!fs::exists(weights)) {
        throw Error(dir +
                    ": no adapter_model.safetensors (PyTorch .bin adapters are not read; "
                    "re-save with safe_serialization=True)");
    }
    const auto file = SafetensorsFile::open(weights.string());
    // PEFT names: base_model.model.<module>.lora_A.weight (older files add ".default").
    for (const auto& [name, t] : file->tensors()) {
        const auto pos = name.find(".lora_A.");
        if (pos == std::string::npos) {
            if (name.find(".lora_B.") == std::string::npos) {
                throw Error(weights.string() + ": unexpected tensor '" + name +
                            "' (only LoRA A/B)");
            }
            continue;
        }
        std::string module = name.substr(0, pos);
        if (module.rfind("base_model.model.", 0) == 0) module = module.substr(17);
        if (!target_params.empty() && is_fused_experts(module)) {
            std::string b_name = name;
            b_name.replace(pos, 8, ".lora_B.");
            const auto bit = file->tensors().find(b_name);
            if (bit == file->tensors().end())
                throw Error(weights.string() + ": '" + name + "' has no matching '" + b_name + "'");
            const TensorView& b = bit->second;
            if (t.shape.size() != 2 || b.shape.size() != 2 || t.shape[0] != b.shape[1])
                throw Error(weights.string() + ": " + t.describe() + " and " + b.describe() +
                            " are not a fused expert LoRA pair (A [E*r, in], B [out, r*E])");
            FusedExpertPair f;
            f.peft_module = module;
            f.a = to_f32(t);
            f.b = to_f32(b);
            f.a_rows = t.shape[0];
            f.a_cols = t.shape[1];
            f.b_rows = b.shape[0];
            f.b_cols = b.shape[1];
            const auto ranks = cfg.value("rank_pattern", nlohmann::json());
            const auto alphas = cfg.value("alpha_pattern", nlohmann::json());
            const int64_t r = cfg.value("r", int64_t(8));
            const float alpha = cfg.value("lora_alpha", 8.0f);
            f.rank_gate_up = pattern_value<int64_t>(ranks, "gate_up_proj", r);
            f.rank_down = pattern_value<int64_t>(ranks, "down_proj", r);
            f.alpha_gate_up = pattern_value<float>(alphas, "gate_up_proj", alpha);
            f.alpha_down = pattern_value<float>(alphas, "down_proj", alpha);
            ad.fused_raw.push_back(std::move(f));
            continue;
        }
        std::string b_name = name;
        b_name.replace(pos, 8, ".lora_B.");
        const auto bit = file->tensors().find(b_name);
        if (bit == file->tensors().end())
            throw Error(weights.string() + ": '" + name + "' has no matching '" + b_name + "'");
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
            if (module.ends_with(it.key()) || module.find(it.key()) != std::string::npos)
                p.alpha = it->get<float>();
        }
        ad.layers[module] = std::move(p);
    }
    if (ad.layers.empty() && ad.fused_raw.empty())
        throw Error(weights.string() + ": holds no LoRA tensors");
    return ad;
}

LoraAdapter load_gguf_adapter(const std::string& path) {
    const auto f = GgufFile::open(path);
    const std::string type = f->get_string("general.type", "");
    if (type != "adapter" || f->get_string("adapter.type", "") != "lora") {
        throw Error(path + ": not a LoRA adapter (general.type is '" + type +
                    "', expected 'adapter' with adapter.type 'lora')");
    }
    const std::string arch = f->require_string("general.architecture");
    const double alpha = f->get_float("adapter.lora.alpha", 0.0);
    LoraAdapter ad;
    ad.origin = path;
    for (const GgufTensorInfo& t : f->tensors()) {
        if (!t.name.ends_with(".lora_a")) {
            if (!t.name.ends_with(".lora_b"))
                throw Error(path + ": unexpected tensor '" + t.name + "'");
            continue;
        }
        const std::string base = t.name.substr(0, t.name.size() - 7);  // blk.N.attn_q.weight
        const GgufTensorInfo& b = f->tensor(base + ".lora_b");
        const std::string stem = base.ends_with(".weight") ? base.substr(0, base.size() - 7) : base;
        const std::string module = hf_module_name(arch, stem);
        if (module.empty())
            throw Error(path + ": adapter tensor '" + t.name + "' targets no known layer");
        const auto as = t.shape(), bs = b.shape();  // A [r, in], B [out, r]
        if (as.size() != 2 || bs.size() != 2 || as[0] != bs[1]) {
            throw Error(path + ": " + t.describe() + " and " + b.describe() +
                        " are not a LoRA pair");
        }
        LoraPair p;
        p.rank = as[0];
        p.in = as[1];
        p.out = bs[0];
        p.a.resize(static_cast<size_t>(p.rank * p.in));
        p.b.resize(static_cast<size_t>(p.out * p.rank));
        require_quant_kernels(t.type, path + ": " + t.describe());
        require_quant_kernels(b.type, path + ": " + b.describe());
        dequantize_row(t.type, t.data, p.a.data(), t.numel());
        dequantize_row(b.type, b.data, p.b.data(), b.numel());
        if (alpha > 0.0) {
            p.alpha = float(alpha);
        } else {
            p.alpha = 1.0f;
            p.alpha_is_scale = true;
        }
        ad.layers[module] = std::move(p);
    }
    if (ad.layers.empty()) throw Error(path + ": holds no LoRA tensors");
    return ad;
}

LoraAdapter load_lora_adapter(const std::string& path) {
    if (std::filesystem::is_directory(path)) return load_peft_adapter(path);
    if (path.ends_with(".gguf")) return load_gguf_adapter(path);
    throw Error(path + ": expected a PEFT adapter folder or a GGUF LoRA adapter file");
}

void resolve_fused_experts(LoraAdapter& ad, const DecoderModel& model) {
    for (FusedExpertPair& f : ad.fused_raw) {
        // The layer: PEFT's module path names it (model.layers.<L>.mlp.experts[.base_layer]);
        // the model's own expert names may differ (Mixtral's block_sparse_moe.experts.N.w1).
        const std::string lead = "model.layers.";
        const MoeBlock* moe = nullptr;
        if (f.peft_module.rfind(lead, 0) == 0) {
            const size_t li = size_t(std::stoll(f.peft_module.substr(lead.size())));
            if (li < model.layers.size())
                moe = dynamic_cast<const MoeBlock*>(model.layers[li].ffn.get());
        }
        if (!moe || moe->experts.empty())
            throw Error(ad.origin + ": fused expert adapter '" + f.peft_module +
                        "' names no experts of " + model.info().path);
        const auto component = [](const std::string& name) {
            return name.substr(name.rfind('.') + 1);
        };
        const Expert& e0 = moe->experts.front();
        const std::string gate_name = component(e0.gate.name), up_name = component(e0.up.name),
                          down_name = component(e0.down.name);
        const std::string experts =
            e0.gate.name.substr(0, e0.gate.name.size() - gate_name.size() - 3);  // "...experts"
        const int64_t E = int64_t(moe->experts.size());
        const int64_t hidden = e0.gate.in_features(), inter = e0.gate.out_features();
        // Which parameter: told by the shapes (A [E*r, in], B [out, E*r]).
        std::string param;
        int64_t r = 0;
        float alpha = 0;
        if (f.a_cols == hidden && f.b_rows == 2 * inter && f.a_rows == E * f.rank_gate_up) {
            param = "gate_up_proj";
            r = f.rank_gate_up;
            alpha = f.alpha_gate_up;
        } else if (f.a_cols == inter && f.b_rows == hidden && f.a_rows == E * f.rank_down) {
            param = "down_proj";
            r = f.rank_down;
            alpha = f.alpha_down;
        } else {
            throw Error(ad.origin + ": fused expert adapter '" + f.peft_module + "' (A [" +
                        std::to_string(f.a_rows) + " x " + std::to_string(f.a_cols) + "], B [" +
                        std::to_string(f.b_rows) + " x " + std::to_string(f.b_cols) +
                        "]) fits neither gate_up_proj nor down_proj of " + std::to_string(E) +
                        " experts of hidden " + std::to_string(hidden) + " and width " +
                        std::to_string(inter));
        }
        const FusedExpertLora info{f.peft_module, experts,  param,     E,       r,
                                   f.a_cols,      f.b_rows, gate_name, up_name, down_name};
        for (int64_t e = 0; e < E; ++e) {
            std::vector<float> ae(f.a.begin() + e * r * f.a_cols,
                                  f.a.begin() + (e + 1) * r * f.a_cols);
            std::vector<float> be(static_cast<size_t>(f.b_rows * r));
            for (int64_t o = 0; o < f.b_rows; ++o)
                for (int64_t ri = 0; ri < r; ++ri)
                    be[size_t(o * r + ri)] = f.b[size_t(o * r * E + ri * E + e)];
            const auto add = [&](const std::string& name, int64_t row0, int64_t rows) {
                LoraPair p;
                p.rank = r;
                p.in = f.a_cols;
                p.out = rows;
                p.a = ae;
                p.b.assign(be.begin() + row0 * r, be.begin() + (row0 + rows) * r);
                p.alpha = alpha;
                ad.layers[info.member(e, name)] = std::move(p);
            };
            if (param == "down_proj") {
                add(down_name, 0, f.b_rows);
            } else {  // transformers chunks gate_up's output: gate first, then up
                add(gate_name, 0, inter);
                add(up_name, inter, inter);
            }
        }
        ad.fused.push_back(info);
    }
    ad.fused_raw.clear();
}

void apply_lora(DecoderModel& model, const LoraAdapter& adapter_in, float scale) {
    LoraAdapter resolved;
    const LoraAdapter* adapter_ptr = &adapter_in;
    if (!adapter_in.fused_raw.empty()) {
        resolved = adapter_in;
        resolve_fused_experts(resolved, model);
        adapter_ptr = &resolved;
    }
    const LoraAdapter& adapter = *adapter_ptr;
    std::map<std::string, Linear*> by_name;
    model.visit_linears([&](Linear& l) { by_name[l.name] = &l; });
    for (const auto& [module, p] : adapter.layers) {
        const auto it = by_name.find(module);
        if (it == by_name.end()) {
            throw Error(adapter.origin + ": adapter layer '" + module +
                        "' is not a linear layer of " + model.info().path);
        }
        Linear& l = *it->second;
        if (l.in_features() != p.in || l.out_features() != p.out) {
            throw Error(adapter.origin + ": adapter layer '" + module + "' is [" +
                        std::to_string(p.out) + " x " + std::to_string(p.in) +
                        "] but the model's layer is [" + std::to_string(l.out_features()) + " x " +
                        std::to_string(l.in_features()) + "]");
        }
        LoraTerm term;
        term.rank = p.rank;
        term.a = p.a;
        term.b = p.b;
        const float denom = adapter.use_rslora ? std::sqrt(float(p.rank)) : float(p.rank);
        term.scale = p.alpha_is_scale ? scale : scale * p.alpha / denom;
        l.lora.push_back(std::move(term));
        ++l.lora_version;
        if (l.reads_weight_directly) l.merge_lora();
    }
}

}  // namespace moe
