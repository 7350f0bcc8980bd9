#include "hybrid/placement_export.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

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

}  // namespace moe
