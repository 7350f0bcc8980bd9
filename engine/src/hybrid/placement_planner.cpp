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

uint64_t gpu_weight_bytes(const ModelFootprint& model, const Placement& p) {
    require(p.layers.size() == model.layers.size(),
            "placement: wrong number of layers for this model");
    uint64_t b = 0;
    if (p.embeddings == Device::Gpu) b += model.embedding_bytes;
    if (p.head == Device::Gpu) b += model.head_bytes;
    for (size_t i = 0; i < model.layers.size(); ++i) {
        const auto& l = model.layers[i];
        const auto& pl = p.layers[i];
        if (pl.attention == Device::Gpu) b += l.attention;
        if (pl.dense == Device::Gpu) b += l.dense;
        for (size_t e = 0; e < l.experts.size() && e < pl.experts.size(); ++e)
            if (pl.experts[e] == Device::Gpu) b += l.experts[e];
    }
    return b;
}

ExpertStrategy parse_expert_strategy(const std::string& s) {
    if (s == "uniform") return ExpertStrategy::Uniform;
    if (s == "frequency") return ExpertStrategy::Frequency;
    if (s == "front") return ExpertStrategy::FrontLoading;
    if (s == "back") return ExpertStrategy::BackLoading;
    if (s == "balanced") return ExpertStrategy::LayerBalanced;
    throw Error("placement strategy '" + s +
                "': expected uniform, frequency, front, back or balanced");
}

namespace {

// The order in which `strategy` gives (layer, expert) pairs the GPU. Within a layer experts go
// by use when there is telemetry (ties and no telemetry: by index).
std::vector<std::pair<size_t, size_t>> expert_order(const ModelFootprint& model,
                                                    const ExpertUsage* usage,
                                                    ExpertStrategy strategy) {
    const size_t L = model.layers.size();
    std::vector<std::vector<size_t>> by_use(L);  // per layer, experts most used first
    for (size_t i = 0; i < L; ++i) {
        auto& v = by_use[i];
        v.resize(model.layers[i].experts.size());
        for (size_t e = 0; e < v.size(); ++e) v[e] = e;
        if (usage)
            std::stable_sort(v.begin(), v.end(), [&](size_t a, size_t b) {
                return usage->counts[i][a] > usage->counts[i][b];
            });
    }
    std::vector<std::pair<size_t, size_t>> order;
    switch (strategy) {
        case ExpertStrategy::Frequency: {
            std::vector<std::tuple<uint64_t, size_t, size_t>> all;  // (count, layer, expert)
            for (size_t i = 0; i < L; ++i)
                for (size_t e = 0; e < model.layers[i].experts.size(); ++e)
                    all.emplace_back(usage->counts[i][e], i, e);
            std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
                return std::get<0>(a) > std::get<0>(b);
            });
            for (const auto& [count, i, e] : all) order.emplace_back(i, e);
            break;
        }
        case ExpertStrategy::FrontLoading:
        case ExpertStrategy::BackLoading:
            for (size_t n = 0; n < L; ++n) {
                const size_t i = strategy == ExpertStrategy::FrontLoading ? n : L - 1 - n;
                for (size_t e : by_use[i]) order.emplace_back(i, e);
            }
            break;
        default: {  // Uniform and LayerBalanced: round-robin over layers, rank by rank
            size_t ranks = 0;
            for (const auto& v : by_use) ranks = std::max(ranks, v.size());
            for (size_t rank = 0; rank < ranks; ++rank)
                for (size_t i = 0; i < L; ++i)
                    if (rank < by_use[i].size())
                        order.emplace_back(
                            i, strategy == ExpertStrategy::Uniform ? rank : by_use[i][rank]);
            break;
        }
    }
    return order;
}

// Checks that `usage` (when given) has the model's shape and resolves Default; throws
// moe::Error for Frequency without telemetry.
ExpertStrategy checked_strategy(const ModelFootprint& model, const ExpertUsage* usage,
                                ExpertStrategy strategy) {
    if (usage) {
        const auto& c = usage->counts;
        if (c.size() != model.layers.size())
            throw Error("expert usage: recorded for " + std::to_string(c.size()) +
                        " layers, the model has " + std::to_string(model.layers.size()));
        for (size_t i = 0; i < model.layers.size(); ++i)
            if (c[i].size() != model.layers[i].experts.size())
                throw Error("expert usage: layer " + std::to_string(i) + " lists " +
                            std::to_string(c[i].size()) + " experts, the model has " +
                            std::to_string(model.layers[i].experts.size()));
    }
    if (strategy == ExpertStrategy::Default)
        strategy = usage ? ExpertStrategy::Frequency : ExpertStrategy::Uniform;
    if (strategy == ExpertStrategy::Frequency && !usage)
        throw Error("the frequency strategy needs expert telemetry (--usage FILE)");
    return strategy;
}

}  // namespace

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
    // Auto: the strategy's order of (layer, expert) pairs, taken while they fit.
    const ExpertStrategy strategy = checked_strategy(model, o.usage, o.strategy);
    for (const auto& [i, e] : expert_order(model, o.usage, strategy)) {
        if (!take(model.layers[i].experts[e])) break;
        p.layers[i].experts[e] = Device::Gpu;
    }
    return r;
}

Placement plan_experts(const ModelFootprint& model, const Placement& base, uint64_t weight_budget,
                       ExpertStrategy strategy, const ExpertUsage* usage) {
    require(base.layers.size() == model.layers.size(),
            "placement: wrong number of layers for this model");
    strategy = checked_strategy(model, usage, strategy);
    Placement p = base;
    for (auto& l : p.layers)
        for (auto& d : l.experts) d = Device::Cpu;
    const uint64_t fixed = gpu_weight_bytes(model, p);
    uint64_t left = weight_budget > fixed ? weight_budget - fixed : 0;
    for (const auto& [i, e] : expert_order(model, usage, strategy)) {
        if (e >= p.layers[i].experts.size()) continue;
        const uint64_t b = model.layers[i].experts[e];
        if (b > left) break;  // as plan_placement: the order is a priority, not a knapsack
        left -= b;
        p.layers[i].experts[e] = Device::Gpu;
    }
    return p;
}

}  // namespace moe
