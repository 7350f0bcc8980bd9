#include "hybrid/strategy_report.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "hybrid/expert_cache_sim.h"

namespace moe {

namespace {

// Share of the counted use (prefill and decode) whose expert the placement keeps on the GPU.
double usage_hit_rate(const ExpertUsage& u, const Placement& p) {
    double hit = 0, all = 0;
    for (size_t l = 0; l < u.counts.size() && l < p.layers.size(); ++l) {
        for (size_t e = 0; e < u.counts[l].size(); ++e) {
            all += double(u.counts[l][e]);
            if (e < p.layers[l].experts.size() && p.layers[l].experts[e] == Device::Gpu)
                hit += double(u.counts[l][e]);
        }
    }
    return all > 0 ? hit / all : 0.0;
}

std::string percent(double v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%.1f %%", 100.0 * v);
    return buf;
}

}  // namespace

StrategyReport compare_strategies(const CostShape& shape, const PlanOptions& options,
                                  const RoutingTrace* held_out, const MachineRates* rates,
                                  const CostOptions& cost) {
    require(options.usage != nullptr, "comparing strategies needs the workload's telemetry");
    StrategyReport r;
    // Uniform (the same number of experts per layer, by index) is the baseline: what a
    // placement gets without telemetry. The others rank experts by the workload's use.
    const std::pair<const char*, ExpertStrategy> strategies[] = {
        {"uniform", ExpertStrategy::Uniform},
        {"frequency", ExpertStrategy::Frequency},
        {"front", ExpertStrategy::FrontLoading},
        {"back", ExpertStrategy::BackLoading},
        {"balanced", ExpertStrategy::LayerBalanced}};
    int64_t uniform_per_layer = 0;
    for (const auto& [name, strategy] : strategies) {
        PlanOptions o = options;
        o.strategy = strategy;
        o.cpu_experts = CpuExperts::Auto;
        const Placement p = plan_placement(shape.footprint, o).placement;
        StrategyScore s;
        s.name = name;
        s.gpu_experts = p.gpu_expert_count();
        s.usage_hit = usage_hit_rate(*options.usage, p);
        if (held_out) s.held_out_hit = placement_hit_rate(*held_out, p).rate();
        if (rates)
            s.decode_tok_s = predict_speed(shape, p, options.usage, *rates, cost).decode_tok_s;
        if (strategy == ExpertStrategy::Uniform) {
            int64_t moe_layers = 0;
            for (const auto& l : p.layers) moe_layers += !l.experts.empty();
            uniform_per_layer = moe_layers ? s.gpu_experts / moe_layers : 0;
        }
        r.scores.push_back(s);
    }
    if (held_out && uniform_per_layer > 0) {
        for (const auto& [name, policy] : {std::pair{"dynamic lru", CachePolicy::Lru},
                                           std::pair{"dynamic lfu", CachePolicy::Lfu}}) {
            StrategyScore s;
            s.name = name;
            s.held_out_hit = simulate_expert_cache(*held_out, uniform_per_layer, policy).rate();
            s.gpu_experts = uniform_per_layer * held_out->layers;
            r.scores.push_back(s);
        }
    }
    // The verdict compares on the held-out trace when there is one (what a new conversation
    // would see), else on the workload's own counts.
    const auto value = [&](const StrategyScore& s) {
        return held_out ? s.held_out_hit : s.usage_hit;
    };
    const StrategyScore& uniform = r.scores.front();  // the baseline
    const StrategyScore* best = &uniform;
    for (const StrategyScore& s : r.scores)
        if (value(s) > value(*best)) best = &s;
    const double gain = value(*best) - value(uniform);
    const std::string basis = held_out ? "on the held-out trace" : "on the workload's counts";
    if (uniform.gpu_experts == 0) {
        r.verdict = "no routed expert fits the GPU budget: the strategy does not matter";
    } else if (gain >= 0.05 && value(*best) >= 1.1 * value(uniform)) {
        r.verdict = "expert use is skewed: " + best->name + " serves " + percent(value(*best)) +
                    " of it from the GPU against " + percent(value(uniform)) +
                    " for uniform (experts by index) " + basis;
    } else {
        r.verdict = "expert use is close to uniform " + basis + ": the best strategy (" +
                    best->name + ", " + percent(value(*best)) + ") is within " +
                    percent(std::max(gain, 0.0)) + " of uniform (" + percent(value(uniform)) +
                    ", experts by index); the choice matters little for "
                    "this workload";
    }
    return r;
}

std::string StrategyReport::table() const {
    std::string out;
    char buf[200];
    for (const StrategyScore& s : scores) {
        std::snprintf(buf, sizeof buf, "%-12s %6lld GPU experts  workload %7s  held-out %7s  %s\n",
                      s.name.c_str(), (long long)s.gpu_experts,
                      s.usage_hit < 0 ? "-" : percent(s.usage_hit).c_str(),
                      s.held_out_hit < 0 ? "-" : percent(s.held_out_hit).c_str(),
                      s.decode_tok_s < 0 ? ""
                                         : ("predicted decode " +
                                            std::to_string(int(s.decode_tok_s + 0.5)) + " tok/s")
                                               .c_str());
        out += buf;
    }
    return out;
}

}  // namespace moe
