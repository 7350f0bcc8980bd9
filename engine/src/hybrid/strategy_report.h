#pragma once
// Whether the choice of GPU experts matters for a workload (issue 8): every planner strategy
// at the same GPU budget, scored by the share of expert use it serves from the GPU — on the
// workload's own counts, and on a held-out routing trace when one is given (a placement
// planned from some prompts, evaluated on others) — next to a dynamic expert cache of as many
// slots per layer as the uniform plan gives, replayed on that trace; with machine rates, the
// predicted decode speed of each. Ends in a verdict in words: skewed use favours frequency
// (or the cache), near-uniform use makes the strategy irrelevant, and the report says which.
#include <optional>
#include <string>
#include <vector>

#include "hybrid/cost_model.h"
#include "hybrid/placement_planner.h"
#include "model/expert_usage.h"
#include "model/routing_trace.h"

namespace moe {

struct StrategyScore {
    std::string name;          // "uniform", "frequency", ..., "dynamic lru"
    double usage_hit = -1;     // share of the workload's counted expert use on the GPU
    double held_out_hit = -1;  // on the held-out trace (-1: no trace)
    double decode_tok_s = -1;  // predicted (-1: no rates)
    int64_t gpu_experts = 0;   // in all layers (dynamic: slots in all layers)
};

struct StrategyReport {
    std::vector<StrategyScore> scores;
    std::string verdict;
    std::string table() const;  // one line per strategy
};

// `options.usage` must be set (the workload); `held_out` and `rates` are optional.
StrategyReport compare_strategies(const CostShape& shape, const PlanOptions& options,
                                  const RoutingTrace* held_out, const MachineRates* rates,
                                  const CostOptions& cost = {});

}  // namespace moe
