#pragma once
// One MoE layer of the hybrid decoder (CUDA builds only): the router, shared experts and
// GPU-resident routed experts on the GPU, the other routed experts in the CPU's fused operator
// (model/MoeBlock over its ExpertBank), overlapped.
//
// Stream order of a layer (host_steps.h: Eager runs the host steps inline after waiting for
// the stream, Graph records them as host nodes, Signalled lets the stream wait for the host):
//   router logits; copy logits (and h, when experts live on the CPU) to pinned memory
//   host step A: route (every routing rule runs on the host: k of E per token is tiny work);
//                write the GPU experts' slots; Eager and Graph: start the CPU experts on a
//                background thread (or, when the GPU has nothing to do meanwhile, run them
//                right there); Signalled: the host thread itself goes on to step B
//   copy the slots up; y = shared experts; y += GPU experts (three launches for all of them)
//   host step B: Signalled: compute the CPU experts; else wait for the background thread
//   copy their sum up; y += it
// Batches too large for the slot kernels (prefill) run eagerly with one GEMM set per GPU expert,
// and the CPU-resident experts either on the CPU or streamed to the GPU (expert_streamer.h),
// whichever the cost model expects to be faster.
#include <cuda_runtime_api.h>

#include <memory>
#include <vector>

#include "cuda/expert_kernels.h"
#include "hybrid/background_job.h"
#include "hybrid/expert_streamer.h"
#include "hybrid/gpu_blocks.h"
#include "hybrid/host_steps.h"
#include "hybrid/placement.h"
#include "hybrid/step_profile.h"

namespace moe::hybrid {

// The output of a layer's deferred experts, waiting to join the next layer's output.
struct PendingDeferred {
    const float* device_sum = nullptr;  // on the GPU (GPU-resident or prefill experts), or null
    int host_parity = -1;               // the CPU's sum in MoeStaging::def_host[parity], or -1
    uint32_t ticket = 0;                // its detached host step (HostSteps::wait_detached)
    bool any() const { return device_sum || host_parity >= 0; }
};

// Pinned and device staging shared by all MoE layers of a model. One layer runs at a time,
// except with expert deferral, where layer L's deferred CPU experts run during layer L+1: what
// they read and write is kept per layer parity.
struct MoeStaging {
    Scratch router, shared, gate, hexp, ys, cpu_sum, def_sum;
    Scratch def_dev[2];  // the deferred experts' sum on the GPU, per parity
    cuda::DeviceBuffer<cuda::ExpertSlot> slots, def_slots;
    cuda::DeviceBuffer<int32_t> count, def_count;
    cuda::PinnedBuffer<float> logits_host, cpu_out_host;
    cuda::PinnedBuffer<float> h_host[2], def_host[2];  // per parity
    cuda::PinnedBuffer<cuda::ExpertSlot> slots_host, def_slots_host;
    cuda::PinnedBuffer<int32_t> count_host, def_count_host;
    Routing routing, now, later[2];
    int parity = 0;  // of the MoE layer running (flips per layer)
    PendingDeferred pending;
    // Before each step: no deferred output pending.
    void begin_step() {
        parity = 0;
        pending = {};
    }
    BackgroundJob cpu;
    StepProfile profile;
    HostSteps host{profile};
    // Per-expert path (large batches), and streaming CPU-resident experts to the GPU there.
    StreamPolicy stream_policy = StreamPolicy::Auto;
    ExpertCostModel cost;
    std::unique_ptr<ExpertStreamer> streamer;
    Scratch xe, ye;
    cuda::DeviceBuffer<int32_t> idx;
    cuda::DeviceBuffer<float> w;
    cuda::PinnedBuffer<int32_t> idx_host;
    cuda::PinnedBuffer<float> w_host;
};

class GpuMoeLayer {
  public:
    // Batches up to which the slot kernels run (decode, small batches; their combine step is
    // quadratic in the batch), within this many (token, expert) assignments.
    static constexpr int64_t kMaxSlotTokens = 8;
    static constexpr int64_t kMaxSlots = 256;

    GpuMoeLayer(const MoeBlock& m, cudaStream_t s);
    // Uploads the experts `want` puts on the GPU that are not there yet, frees those leaving.
    void set_experts(const std::vector<Device>& want, cudaStream_t s);
    // The CPU-side experts, for the expert streamer (null when they run on the reference path).
    const ExpertBank* bank() const { return m_.bank.get(); }
    bool slot_path(int64_t T) const { return T <= kMaxSlotTokens && T * k_ <= kMaxSlots; }

    // y [T, hidden] = the layer's MoE output for h [T, hidden] (both device), plus the deferred
    // experts' output of the layer before (st.pending). With `deferred` > 0, each token's
    // `deferred` lowest-weighted experts are left out of y and become st.pending (expert
    // deferral, DecoderModel::deferred_experts), their CPU part computed while the next layer
    // runs.
    void forward(GpuContext& g, MoeStaging& st, const float* h, int64_t T, float* y, StepMode mode,
                 int64_t deferred = 0);
    // y += st.pending (after a layer that is not a MoE layer), and nothing pending any more.
    static void add_pending(GpuContext& g, MoeStaging& st, int64_t T, int64_t hidden, float* y,
                            StepMode mode);

  private:
    // y += p (its device sum; its host sum copied up once its detached step ran).
    static void add_deferred(GpuContext& g, MoeStaging& st, const PendingDeferred& p, int64_t T,
                             int64_t hidden, float* y, StepMode mode);
    void slot_forward(GpuContext& g, MoeStaging& st, const float* h, int64_t T, float* y,
                      StepMode mode, int64_t deferred);
    void per_expert_forward(GpuContext& g, MoeStaging& st, const float* h, int64_t T, float* y,
                            int64_t deferred);
    // y (zeroed first) = the experts of `r` (GPU-resident, streamed or on the CPU) for the
    // per-expert path; h_host holds h.
    void per_expert_run(GpuContext& g, MoeStaging& st, const float* h, const float* h_host,
                        int64_t T, const Routing& r, float* y);
    void add_shared(GpuContext& g, MoeStaging& st, const float* h, int64_t T, float* y);
    // Host step A's routing -> slots (and, with `start_cpu`, the CPU job). `deferred`: the
    // routing's split into st.now and st.later[parity]; `host_pending`: the parity of the
    // previous layer's deferred CPU sum that the CPU job adds to its own, or -1.
    void route_and_start(MoeStaging& st, int64_t T, bool start_cpu, int64_t deferred, int parity,
                         int host_pending);
    void run_cpu_experts(MoeStaging& st, int64_t T, const Routing& r, int parity, int host_pending);
    void run_gpu_slots(MoeStaging& st, const cuda::ExpertSlot* slots, const int32_t* count,
                       const float* h, int64_t T, float* y, cudaStream_t s);
    // Whether the GPU has work of its own while the CPU experts run (GPU or shared experts).
    bool overlaps() const { return gpu_count_ > 0 || shared_ != nullptr; }

    const MoeBlock& m_;
    int64_t hidden_ = 0, inter_ = 0, k_ = 0;
    GpuLinear router_, shared_gate_;
    std::unique_ptr<GpuMlp> shared_;
    std::vector<std::unique_ptr<GpuMlp>> experts_;  // null = on the CPU
    std::vector<uint8_t> gpu_mask_;
    int64_t gpu_count_ = 0;
    cuda::DeviceBuffer<cuda::GpuExpertWeights> table_;
};

}  // namespace moe::hybrid
