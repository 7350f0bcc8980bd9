#pragma once
// The automatic placement: from a GPU memory budget, everything that is not a routed expert
// goes to the GPU first (attention, dense / shared parts, the output head — used by every
// token), then routed experts with what is left, the same number in every MoE layer. Which
// experts deserve the GPU is measured later (expert telemetry); until then experts 0..n-1 of
// each layer are as good a guess as any.
#include <cstdint>
#include <string>
#include <vector>

#include "hybrid/placement.h"
#include "model/expert_usage.h"

namespace moe {

class DecoderModel;

// Bytes each part of a model occupies on the GPU (bf16 weights, fp32 KV cache), per layer, and
// the KV cache per token.
struct ModelFootprint {
    ModelIdentity identity;
    uint64_t embedding_bytes = 0, head_bytes = 0;
    struct Layer {
        uint64_t attention = 0;
        uint64_t dense = 0;             // dense MLP, or router + shared experts
        std::vector<uint64_t> experts;  // per routed expert; empty for a dense layer
    };
    std::vector<Layer> layers;
    uint64_t kv_bytes_per_token = 0;  // all layers, fp32 K and V
};

// The identity placements are checked against (architecture, layers, experts, weight files).
ModelIdentity model_identity(const DecoderModel& model);

ModelFootprint measure_footprint(DecoderModel& model);

enum class CpuExperts { All, None, Auto };
// "all", "none", "auto"; throws moe::Error naming the value otherwise.
CpuExperts parse_cpu_experts(const std::string& s);

// Which routed experts get the GPU once the other weights are placed (issue 8's strategies):
// Uniform — the same number in every MoE layer, experts by index (the baseline: what a
// placement without telemetry gets);
// Frequency — the most used (layer, expert) pairs first, whatever their layer (needs
// telemetry); FrontLoading / BackLoading — whole layers from the first / the last;
// LayerBalanced — round-robin over layers, each layer's most used next. Default: Frequency with
// telemetry, Uniform without.
enum class ExpertStrategy { Default, Uniform, Frequency, FrontLoading, BackLoading, LayerBalanced };
// "uniform", "frequency", "front", "back", "balanced"; throws moe::Error otherwise.
ExpertStrategy parse_expert_strategy(const std::string& s);

struct PlanOptions {
    uint64_t gpu_budget = 0;  // bytes of GPU memory the model may use
    CpuExperts cpu_experts = CpuExperts::Auto;
    int64_t context = 4096;                  // tokens of KV cache to keep room for
    uint64_t reserve = uint64_t(512) << 20;  // activations, cuBLAS workspace, CUDA graphs
    // Expert telemetry (model/expert_usage.h): with it, Auto puts the most used experts on the
    // GPU first, whatever their layer; without it, the same number of experts per layer.
    const ExpertUsage* usage = nullptr;
    ExpertStrategy strategy = ExpertStrategy::Default;
};

struct PlanResult {
    Placement placement;
    uint64_t gpu_bytes = 0;          // weights + KV cache + reserve planned on the GPU
    std::vector<std::string> notes;  // what did not fit, in words
};

// The bytes of weights `placement` puts on the GPU (the KV cache and working memory come on
// top; plan_placement budgets for them).
uint64_t gpu_weight_bytes(const ModelFootprint& model, const Placement& placement);

// Throws moe::Error when --cpu-experts none cannot be honoured (naming the bytes needed and
// available).
PlanResult plan_placement(const ModelFootprint& model, const PlanOptions& options);

// The routed experts of `base` chosen again by `strategy`, everything else of `base` kept (a
// loaded GPU model cannot move its attention or head without a reload, so the placement
// editor's presets only redistribute experts): experts in the strategy's order while the
// weights on the GPU stay within `weight_budget` (weights only, as the editor's budget bar
// counts them). Frequency needs `usage`; Default is Frequency with it, Uniform without.
Placement plan_experts(const ModelFootprint& model, const Placement& base, uint64_t weight_budget,
                       ExpertStrategy strategy, const ExpertUsage* usage);

}  // namespace moe
