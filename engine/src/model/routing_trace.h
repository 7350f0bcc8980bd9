#pragma once
// Routing traces (issue 8): every routing decision of a run, in order — per router call the MoE
// layer, the number of tokens and each token's chosen experts — so that expert caches and
// placements can be evaluated offline on a workload (hybrid/expert_cache_sim.h) and the same
// decisions replayed. Recorded by attaching a trace to a model's routers.
//
// File form (JSON lines): a header {"version": 1, "model": "...", "layers": L, "experts": E,
// "k": K}, then one line per router call {"layer": l, "tokens": T, "ids": [T*K ids]}.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace moe {

class DecoderModel;

struct RoutingTraceStep {
    int32_t layer = 0;         // index in the model's layers
    int32_t tokens = 0;        // 1 for a decode step
    std::vector<int32_t> ids;  // [tokens * k]
};

struct RoutingTrace {
    std::string architecture;
    int64_t layers = 0, experts = 0, k = 0;
    std::vector<RoutingTraceStep> steps;

    void save(const std::string& path) const;
    // Throws moe::Error naming the file and line of a malformed record.
    static RoutingTrace load(const std::string& path);
    // Per layer and expert, how often the trace routed to it.
    std::vector<std::vector<uint64_t>> counts() const;
};

// Every routing decision of `model` from now on is appended to `trace` (which must outlive the
// recording), until stop_routing_trace.
void start_routing_trace(const DecoderModel& model, RoutingTrace& trace);
void stop_routing_trace(const DecoderModel& model);

}  // namespace moe
