#pragma once
// The placement cost model (issue 8): from a model's sizes, a placement, a workload's expert
// use and rates measured on this machine (calibration.h), the decode and prefill speed the
// hybrid pipeline should reach, and the memory it needs. The planner and the placement editor
// show it before a placement is applied.
//
// Decode, one token, per MoE layer l (p_le: the share of tokens routed to expert e, sum k):
//   CPU experts   c_l = sum_{e on CPU} p_le * cpu_bytes_le / cpu_expert_rate
//                       + cpu_call * min(1, sum_{e on CPU} p_le)
//   GPU part      g_l = gpu_layer (attention, router, launches and the two hand-overs,
//                       measured with every expert on the CPU)
//                       + sum_{e on GPU} p_le * gpu_bytes_le / gpu_expert_rate
//   layer         g_l + c_l when the layer has CPU experts (the GPU waits for their sum and
//                 the next layer waits for the GPU), with deferral of d of k experts
//                 max(g_l, c_l * d / k) + c_l * (k - d) / k; g_l alone without CPU experts.
// plus per token the output head and the step's fixed cost. CPU-only runs add the attention
// and dense weights read by the CPU at the dense rate instead of the GPU part.
// Prefill of T tokens: per layer the GPU's GEMM work at gpu_flops and the attention's, the CPU
// experts either on the CPU (assignments * cpu_assignment) or streamed to the GPU (bytes of
// the experts with tokens at h2d_rate), whichever is faster, as the pipeline decides.
#include <cstdint>
#include <string>
#include <vector>

#include "hybrid/placement.h"
#include "hybrid/placement_planner.h"
#include "model/expert_usage.h"

namespace moe {

class DecoderModel;

// What the cost model needs to know of a model beyond ModelFootprint (which counts bf16 GPU
// bytes, i.e. also the GEMM FLOPs per token: two per weight, two bytes per weight): the bytes
// the CPU reads per expert in its own format (e.g. Q4_K) and per layer for the attention and
// dense parts, and the routing fan-out.
struct CostShape {
    ModelFootprint footprint;
    std::vector<std::vector<uint64_t>> cpu_expert_bytes;  // [layer][expert]
    std::vector<uint64_t> cpu_dense_bytes;  // per layer: attention + dense as the CPU reads them
    uint64_t cpu_head_bytes = 0;
    int64_t top_k = 0;
};

CostShape measure_cost_shape(DecoderModel& model);

// Rates of this machine (calibration.h measures them; JSON for reuse).
struct MachineRates {
    std::string machine;  // CPU and GPU names, threads: what the rates were measured on
    std::string expert_format;
    int threads = 0;
    // CPU
    double cpu_expert_bytes_per_s = 0;  // the fused operator reading a decode token's experts
    double cpu_call_s = 0;              // fixed cost of one operator call
    double cpu_dense_bytes_per_s = 0;   // CPU-only: attention and dense weights (DRAM rate)
    double cpu_assignment_s = 0;        // prefill: one (token, expert) pair on the CPU
    // GPU (0 when none was measured)
    double gpu_layer_s = 0;             // a MoE layer's GPU part with every expert on the CPU
    double gpu_expert_bytes_per_s = 0;  // GPU-resident experts (bf16) in decode
    double gpu_token_s = 0;             // per token: embeddings, head, the step's launch
    double gpu_flops = 0;               // prefill GEMMs
    double gpu_attention_s_per_t2 = 0;  // prefill attention: seconds per T^2 per layer
    double h2d_bytes_per_s = 0;         // pinned host-to-GPU copies (expert streaming)
    double stream_bytes_per_s = 0;      // streamed experts, copy + unpack + GEMMs, measured

    bool has_gpu() const { return gpu_layer_s > 0; }
    nlohmann::json to_json() const;
    // Throws moe::Error naming `where` and the bad field.
    static MachineRates from_json(const nlohmann::json& j, const std::string& where);
    void save(const std::string& path) const;
    static MachineRates load(const std::string& path);
};

struct CostOptions {
    int64_t prompt_tokens = 512;  // the prefill figure's batch
    int64_t context = 4096;       // KV cache kept room for (VRAM)
    int64_t deferred_experts = 0;
    uint64_t reserve = uint64_t(512) << 20;  // activations, workspace, graphs (VRAM)
};

struct SpeedPrediction {
    double decode_tok_s = 0, prefill_tok_s = 0;
    double decode_cpu_s = 0, decode_gpu_s = 0;  // per token: CPU experts, GPU part (summed)
    uint64_t vram_bytes = 0;                    // weights on the GPU + KV cache + reserve
    uint64_t ram_bytes = 0;                     // weights the CPU keeps (experts in its format)
    double gpu_hit_rate = 0;  // share of routed assignments served by GPU-resident experts
    std::vector<std::string> notes;
    // "decode 54.1 tok/s (CPU experts 16.0 ms + GPU 2.3 ms per token), prefill 612 tok/s at
    // 512 tokens, VRAM 3.1 GiB, RAM 17.2 GiB, 12 % of expert use on the GPU"
    std::string summary() const;
    nlohmann::json to_json() const;
};

// `usage`: the workload's routing counts (null: every expert equally likely).
SpeedPrediction predict_speed(const CostShape& shape, const Placement& placement,
                              const ExpertUsage* usage, const MachineRates& rates,
                              const CostOptions& options = {});

}  // namespace moe
