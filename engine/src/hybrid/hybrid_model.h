#pragma once
// The hybrid CPU/GPU model: a loaded decoder whose attention, dense and shared layers run on
// the GPU and whose routed experts run where the placement says — GPU-resident experts on the
// GPU, the others in the CPU's fused expert operator — overlapped: per MoE layer the router's
// scores come back to the host, the CPU experts start at once on the host while the shared
// experts and the GPU experts run on the GPU stream, and the CPU's sum is added when it is done.
//
// Declared in every build; building one needs the CUDA path and a GPU (otherwise
// make_hybrid_model throws an error that says which is missing).
#include <memory>
#include <string>

#include "hybrid/placement.h"
#include "model/model.h"

namespace moe {

class DecoderModel;

// Large prefill batches: run the CPU-resident experts' share on the CPU, or copy those experts
// to the GPU for the batch (hybrid/expert_streamer.h); Auto asks the cost model.
enum class ExpertStreaming { Auto, Never, Always };
// "auto", "never", "always"; throws moe::Error naming the value otherwise.
ExpertStreaming parse_expert_streaming(const std::string& s);

struct HybridOptions {
    // Keep every activation in fp32 (the CPU's bf16-exact precision; used by the checks against
    // the transformers goldens). Off: batches of 16+ rows use bf16 tensor-core GEMMs.
    bool exact = false;
    // Longest piece of a prompt run at once (bounds the activations and attention scores).
    int64_t prefill_chunk = 1024;
    // Replay decode steps from a CUDA graph instead of launching every kernel from the host each
    // token (the first step of a shape runs eagerly and is recorded).
    bool cuda_graphs = true;
    // In those graphs, the routing and the CPU experts run on the host thread that launched
    // the graph, the stream signalling it and waiting for it through counters in host memory
    // (hybrid/host_steps.h). Off: as host-function nodes, which the driver runs on a thread of
    // its own. Measured on the H200 machine of docs/benchmarks.md (every expert on the CPU,
    // session 4): 341 tok/s signalled vs 322 launched kernel by kernel (run 6); 310-320 vs 232
    // with host-function nodes (run 7).
    bool signalled_steps = true;
    // Not in exact mode (the GPU multiplies streamed experts with bf16 activations).
    ExpertStreaming stream_experts = ExpertStreaming::Auto;
};

// A model whose routed experts can move between CPU and GPU while it stays loaded.
class PlacedModel : public Model {
  public:
    virtual const Placement& placement() const = 0;
    // Moves experts to match `p` (uploads the new GPU experts, frees the ones leaving). The
    // placement must be for this model and keep attention and dense parts on the GPU.
    virtual void apply_placement(const Placement& p) = 0;
    // The CPU-side model it runs (routers, expert telemetry, the CPU experts).
    virtual const DecoderModel& decoder() const = 0;

    // Where decode steps spend their time on the host (sums since profiling was switched on;
    // hybrid/step_profile.h): the calibration of the cost model reads it.
    struct DecodeProfile {
        int64_t steps = 0;
        double step_s = 0, gpu_wait_s = 0, route_s = 0, cpu_experts_s = 0;
    };
    // Switching on resets the sums. Off by default (MOE_HYBRID_PROFILE=1 switches it on).
    virtual void set_decode_profiling(bool on) = 0;
    virtual DecodeProfile decode_profile() const = 0;
};

// Takes over `model` (a DecoderModel from load_model) and uploads what `placement` puts on the
// GPU. Throws moe::Error when this build has no CUDA path, no GPU is usable, the model is not a
// per-layer decoder, the placement is for another model or keeps attention / dense parts on
// the CPU, or the weights do not fit.
std::unique_ptr<PlacedModel> make_hybrid_model(std::unique_ptr<Model> model,
                                               const Placement& placement,
                                               const HybridOptions& options = {});

}  // namespace moe
