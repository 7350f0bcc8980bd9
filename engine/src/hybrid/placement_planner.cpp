#include "hybrid/placement_planner.h"

#include <algorithm>
#include <cstdio>
#include <tuple>

#include "core/error.h"
#include "core/memory_info.h"
#include "cpu/moe/pack_cache.h"
#include "model/decoder_model.h"
#include "model/moe_block.h"

namespace moe {

namespace {

// What a matrix occupies on the GPU, where every weight is held as bf16 (GGUF blocks are
// dequantized at upload), whatever its stored type.
uint64_t bytes_of(const WeightMatrix& w) {
    return w.data ? uint64_t(w.rows) * uint64_t(w.cols) * 2 : 0;
}

uint64_t bytes_of(const Linear& l) {
    return bytes_of(l.w) + l.bias.size() * sizeof(float);
}

}  // namespace

ModelIdentity model_identity(const DecoderModel& model) {
    ModelIdentity id;
    const ModelInfo& info = model.info();
    id.architecture = info.architecture;
    id.layers = int64_t(model.layers.size());
    id.experts = info.experts;
    if (!info.path.empty()) id.fingerprint = placement_fingerprint(model_weight_files(info.path));
    return id;
}

ModelFootprint measure_footprint(DecoderModel& model) {
    ModelFootprint f;
    f.identity = model_identity(model);
    f.embedding_bytes = bytes_of(model.embed);
    f.head_bytes = model.lm_head.w.data == model.embed.data ? 0 : bytes_of(model.lm_head);
    for (DecoderLayer& layer : model.layers) {
        ModelFootprint::Layer l;
        layer.attention->visit_linears([&](Linear& x) { l.attention += bytes_of(x); });
        const LayerKvCache kv = layer.attention->make_cache();
        f.kv_bytes_per_token += uint64_t(kv.k_width + kv.v_width) * 4;  // fp32 on the GPU
        if (auto* moe = dynamic_cast<MoeBlock*>(layer.ffn.get()); moe && !moe->experts.empty()) {
            for (const Expert& e : moe->experts)
                l.experts.push_back(bytes_of(e.gate) + bytes_of(e.up) + bytes_of(e.down));
            l.dense += bytes_of(moe->router.gate);
            if (moe->shared) moe->shared->visit_linears([&](Linear& x) { l.dense += bytes_of(x); });
            if (moe->has_shared_gate) l.dense += bytes_of(moe->shared_gate);
        } else {
            layer.ffn->visit_linears([&](Linear& x) { l.dense += bytes_of(x); });
        }
        f.layers.push_back(std::move(l));
    }
    return f;
}

CpuExperts parse_cpu_experts(const std::string& s) {
    if (s == "all") return CpuExperts::All;
    if (s == "none") return CpuExperts::None;
    if (s == "auto") return CpuExperts::Auto;
    throw Error("--cpu-experts: expected all, none or auto, got '" + s + "'");
}

PlanResult plan_placement(const ModelFootprint& model, const PlanOptions& o) {
    std::vector<bool> moe_layers;
    for (const auto& l : model.layers) moe_layers.push_back(!l.experts.empty());
    PlanResult r;
    r.placement = Placement::all_cpu(model.identity, moe_layers);
    Placement& p = r.placement;
    const uint64_t fixed =
        o.reserve + model.kv_bytes_per_token * uint64_t(std::max<int64_t>(o.context, 0));
    if (o.gpu_budget <= fixed) {
        if (o.gpu_budget > 0) {
            r.notes.push_back("the GPU budget (" + format_gib(o.gpu_budget) +
                              ") does not cover the KV cache for " + std::to_string(o.context) +
                              " tokens and the reserve (" + format_gib(fixed) +
                              "): everything stays on the CPU");
        }
        if (o.cpu_experts == CpuExperts::None && model.identity.experts > 0)
            throw Error("--cpu-experts none: no GPU memory is available for the experts");
        return r;
    }
    uint64_t left = o.gpu_budget - fixed;
    r.gpu_bytes = fixed;
    auto take = [&](uint64_t bytes) {
        if (bytes > left) return false;
        left -= bytes;
        r.gpu_bytes += bytes;
        return true;
    };
    // 1. The non-expert part of every layer, in layer order, then the head.
    int64_t placed_layers = 0;
    for (size_t i = 0; i < model.layers.size(); ++i) {
        if (!take(model.layers[i].attention + model.layers[i].dense)) break;
        p.layers[i].attention = p.layers[i].dense = Device::Gpu;
        ++placed_layers;
    }
    if (placed_layers < int64_t(model.layers.size())) {
        r.notes.push_back("attention and dense weights of layers " + std::to_string(placed_layers) +
                          ".." + std::to_string(model.layers.size() - 1) +
                          " do not fit the GPU budget and stay on the CPU");
    } else if (model.head_bytes > 0 && take(model.head_bytes)) {
        p.head = Device::Gpu;
    } else if (model.head_bytes > 0) {
        r.notes.push_back("the output head (" + format_gib(model.head_bytes) +
                          ") does not fit and stays on the CPU");
    } else {
        p.head = Device::Gpu;  // tied to the embeddings: the head costs nothing extra on the GPU
    }
    // 2. Routed experts.
    if (o.cpu_experts == CpuExperts::All) return r;
    uint64_t all_experts = 0;
    for (const auto& l : model.layers)
        for (uint64_t b : l.experts) all_experts += b;
    if (o.cpu_experts == CpuExperts::None) {
        if (placed_layers < int64_t(model.layers.size()) || all_experts > left) {
            throw Error("--cpu-experts none: the routed experts need " + format_gib(all_experts) +
                        " of GPU memory, the budget leaves " + format_gib(left) +
                        " after the other weights, the KV cache and the reserve");
        }
        for (size_t i = 0; i < model.layers.size(); ++i)
            for (auto& d : p.layers[i].experts) d = Device::Gpu;
        take(all_experts);
        return r;
    }
    // Auto with expert telemetry: the most used (layer, expert) pairs first, while they fit.
    if (o.usage) {
        const auto& c = o.usage->counts;
        if (c.size() != model.layers.size())
            throw Error("expert usage: recorded for " + std::to_string(c.size()) +
                        " layers, the model has " + std::to_string(model.layers.size()));
        std::vector<std::tuple<uint64_t, size_t, size_t>> order;  // (count, layer, expert)
        for (size_t i = 0; i < model.layers.size(); ++i) {
            if (c[i].size() != model.layers[i].experts.size())
                throw Error("expert usage: layer " + std::to_string(i) + " lists " +
                            std::to_string(c[i].size()) + " experts, the model has " +
                            std::to_string(model.layers[i].experts.size()));
            for (size_t e = 0; e < c[i].size(); ++e) order.emplace_back(c[i][e], i, e);
        }
        std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
            return std::get<0>(a) > std::get<0>(b);
        });
        for (const auto& [count, i, e] : order) {
            if (!take(model.layers[i].experts[e])) break;
            p.layers[i].experts[e] = Device::Gpu;
        }
        return r;
    }
    // Auto: round-robin over MoE layers, expert index by expert index, while they fit — the
    // same count per layer (one more in the first layers when the budget runs out mid-round).
    size_t max_experts = 0;
    for (const auto& l : model.layers) max_experts = std::max(max_experts, l.experts.size());
    for (size_t e = 0; e < max_experts; ++e) {
        bool any = false;
        for (size_t i = 0; i < model.layers.size(); ++i) {
            if (e >= model.layers[i].experts.size()) continue;
            if (!take(model.layers[i].experts[e])) goto done;
            p.layers[i].experts[e] = Device::Gpu;
            any = true;
        }
        if (!any) break;
    }
done:
    return r;
}

}  // namespace moe
