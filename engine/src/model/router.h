#pragma once
// MoE routers: token -> top-k expert ids and weights, with every routing rule of the supported
// architectures (softmax top-k with optional renormalisation; DeepSeek-V2 group-limited greedy;
// DeepSeek-V3/GLM sigmoid scores + correction bias + group-limited top-k; scaling factor).
#include <cstdint>
#include <vector>

#include "model/linear.h"
#include "model/routing_trace.h"

namespace moe {

struct RouterConfig {
    int64_t experts = 0, top_k = 0;
    enum class Scoring { Softmax, Sigmoid } scoring = Scoring::Softmax;
    bool norm_topk_prob = false;
    float routed_scaling_factor = 1.0f;
    // Group-limited selection: only experts of the best `topk_group` of `n_group` groups.
    int64_t n_group = 1, topk_group = 1;
    // How a group is scored: its best expert (DeepSeek-V2) or the sum of its best two
    // (DeepSeek-V3, on bias-corrected scores).
    enum class GroupScore { Max, Top2Sum } group_score = GroupScore::Max;
};

// The router's decision for T tokens: ids[t*k + j], weights[t*k + j].
struct Routing {
    int64_t tokens = 0, k = 0;
    std::vector<int32_t> ids;
    std::vector<float> weights;
};

class Router {
  public:
    RouterConfig cfg;
    Linear gate;                         // [experts, hidden], optional bias (gpt-oss)
    std::vector<float> correction_bias;  // e_score_correction_bias (sigmoid routers) or empty

    Routing route(const float* x, int64_t T) const;
    // The rule alone, on router logits [T, experts] (exposed for tests and telemetry).
    Routing route_logits(const float* logits, int64_t T) const;

    // Expert telemetry: how many times each expert was chosen since the last reset (every
    // routing through this router counts, whichever device then runs the experts). One model
    // runs one forward pass at a time, so plain counters suffice.
    const std::vector<uint64_t>& usage() const { return usage_; }
    // The part of usage() routed one token at a time (decode steps; the rest is prefill).
    const std::vector<uint64_t>& decode_usage() const { return decode_usage_; }
    // Co-activation telemetry (off by default: experts² counters per layer): how often each
    // pair of experts was chosen for the same token. [a * experts + b], symmetric.
    void count_coactivation(bool on) const {
        coactivation_.assign(on ? size_t(cfg.experts * cfg.experts) : 0, 0);
    }
    const std::vector<uint64_t>& coactivation() const { return coactivation_; }
    // Appends every routing decision to `trace` as layer `layer` (null: stop).
    void trace(RoutingTrace* trace, int32_t layer) const {
        trace_ = trace;
        trace_layer_ = layer;
    }
    // Puts counts taken earlier back (a measurement that routed synthetic tokens must not
    // count as the user's workload).
    void restore_usage(std::vector<uint64_t> usage, std::vector<uint64_t> decode,
                       std::vector<uint64_t> coactivation) const {
        usage_ = std::move(usage);
        decode_usage_ = std::move(decode);
        coactivation_ = std::move(coactivation);
    }
    void reset_usage() const {
        usage_.assign(usage_.size(), 0);
        decode_usage_.assign(decode_usage_.size(), 0);
        coactivation_.assign(coactivation_.size(), 0);
    }

  private:
    mutable std::vector<uint64_t> usage_, decode_usage_, coactivation_;
    mutable RoutingTrace* trace_ = nullptr;
    mutable int32_t trace_layer_ = 0;
};

}  // namespace moe
