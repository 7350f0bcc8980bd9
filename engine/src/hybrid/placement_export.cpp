#include "hybrid/placement_export.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"

namespace moe {

namespace {

// "blk\.(0|3|7)\." for the given layers.
std::string layer_regex(const std::vector<int64_t>& layers) {
    std::string alt;
    for (const int64_t l : layers) alt += (alt.empty() ? "" : "|") + std::to_string(l);
    return layers.size() == 1 ? "blk\\." + alt + "\\." : "blk\\.(" + alt + ")\\.";
}

}  // namespace

ExportedPlacement export_llama_cpp(const Placement& p) {
    ExportedPlacement out;
    std::vector<int64_t> cpu_experts, cpu_attention, cpu_dense;
    int64_t moe_layers = 0;
    for (size_t i = 0; i < p.layers.size(); ++i) {
        const LayerPlacement& l = p.layers[i];
        if (l.attention == Device::Cpu) cpu_attention.push_back(int64_t(i));
        if (l.dense == Device::Cpu) cpu_dense.push_back(int64_t(i));
        if (l.experts.empty()) continue;
        ++moe_layers;
        const int64_t gpu = p.gpu_expert_count(int64_t(i));
        out.gpu_experts += gpu;
        if (2 * gpu < int64_t(l.experts.size())) {
            cpu_experts.push_back(int64_t(i));
        } else {
            out.gpu_experts_kept += gpu;
        }
    }
    out.options = "-ngl 999";
    const auto add = [&](const std::string& regex) { out.options += " -ot \"" + regex + "=CPU\""; };
    if (!cpu_experts.empty()) add(layer_regex(cpu_experts) + "ffn_.*_exps\\.");
    if (!cpu_attention.empty()) add(layer_regex(cpu_attention) + "attn_");
    // The dense part: a dense MLP, or a MoE layer's router and shared experts.
    if (!cpu_dense.empty()) add(layer_regex(cpu_dense) + "ffn_(gate|up|down|gate_inp)(_shexp)?\\.");
    if (p.head == Device::Cpu) add("output\\.");
    out.note = "llama.cpp places whole expert tensors: the experts of " +
               std::to_string(cpu_experts.size()) + " of " + std::to_string(moe_layers) +
               " MoE layers stay on the CPU (fewer than half of them on the GPU here), the others "
               "go to the GPU whole; " +
               std::to_string(out.gpu_experts_kept) + " of this placement's " +
               std::to_string(out.gpu_experts) + " GPU experts keep their place";
    return out;
}

ExportedPlacement export_sglang_kt(const Placement& p, bool frequency) {
    ExportedPlacement out;
    int64_t moe_layers = 0;
    for (size_t i = 0; i < p.layers.size(); ++i) {
        if (p.layers[i].experts.empty()) continue;
        ++moe_layers;
        out.gpu_experts += p.gpu_expert_count(int64_t(i));
    }
    const int64_t per_layer =
        moe_layers ? int64_t(std::llround(double(out.gpu_experts) / double(moe_layers))) : 0;
    out.gpu_experts_kept = per_layer * moe_layers;
    out.options = "--kt-num-gpu-experts " + std::to_string(per_layer) +
                  " --kt-expert-placement-strategy " + (frequency ? "frequency" : "uniform");
    out.note = "sglang-kt takes one GPU expert count per MoE layer: " + std::to_string(per_layer) +
               " (this placement's mean over " + std::to_string(moe_layers) +
               " layers; its exact per-layer experts are in the JSON file written beside)";
    return out;
}

nlohmann::json sglang_kt_experts(const Placement& p) {
    nlohmann::json layers = nlohmann::json::array();
    for (const LayerPlacement& l : p.layers) {
        nlohmann::json ids = nlohmann::json::array();
        for (size_t e = 0; e < l.experts.size(); ++e)
            if (l.experts[e] == Device::Gpu) ids.push_back(e);
        layers.push_back(std::move(ids));
    }
    return {{"gpu_experts_per_layer", std::move(layers)}};
}

std::string sglang_kt_launch_command(const Placement& p, bool frequency, const SglangLaunch& l) {
    namespace fs = std::filesystem;
    if (fs::path(l.model_path).extension() == ".gguf")
        throw Error(l.model_path +
                    ": SGLang with KTransformers loads Hugging Face folders (safetensors), not "
                    "GGUF files; launch it on the model's original folder");
    std::string method;
    if (l.weight_dtype == "BF16") {
        method = "BF16";
    } else if (l.weight_dtype == "F8_E4M3") {
        method = "FP8";
    } else {
        throw Error(l.model_path + ": experts stored as " + l.weight_dtype +
                    "; KTransformers' native methods take BF16 or FP8 (E4M3) checkpoints");
    }
    fs::path folder = fs::path(l.model_path).lexically_normal();
    if (folder.filename().empty()) folder = folder.parent_path();  // "dir/"
    const std::string name = l.served_name.empty() ? folder.filename().string() : l.served_name;
    const auto quoted = [](const std::string& s) {
        std::string q = "'";
        for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
        return q + "'";
    };
    std::string cmd = "python -m sglang.launch_server \\\n";
    const auto opt = [&](const std::string& o) { cmd += "  " + o + " \\\n"; };
    opt("--host 127.0.0.1 --port " + std::to_string(l.port));
    opt("--model " + quoted(l.model_path));
    opt("--kt-weight-path " + quoted(l.model_path));
    opt("--kt-method " + method);
    if (l.cpu_threads > 0) opt("--kt-cpuinfer " + std::to_string(l.cpu_threads));
    opt(export_sglang_kt(p, frequency).options);
    opt("--served-model-name " + quoted(name));
    cmd += "  --trust-remote-code\n";
    return cmd;
}

}  // namespace moe
