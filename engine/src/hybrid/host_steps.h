#pragma once
// Host work placed in a GPU stream's order (CUDA builds only): the routing and the CPU experts
// of each MoE layer, between the GPU work that produces their inputs and the GPU work that
// consumes their outputs. Three ways to run it:
//   Eager     synchronise the stream, then run the function (prefill, and the first decode
//             step of a shape; the host launches the next kernels only afterwards);
//   Graph     a host-function node recorded into a CUDA graph (the function must not call
//             CUDA; its errors are kept for rethrow_pending). The driver runs these nodes on a
//             thread of its own, which costs a hand-over per node;
//   Signalled recorded into a CUDA graph as "signal the host, wait for the host" through
//             cuda::HostSignal; after launching the graph, the host thread runs the recorded
//             functions in order, each as soon as the stream reached it (replay_signalled).
//             No launches and no hand-over remain on the host's path.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <vector>

#include "cuda/host_signal.h"
#include "hybrid/step_profile.h"

namespace moe::hybrid {

enum class StepMode { Eager, Graph, Signalled };

class HostSteps {
  public:
    explicit HostSteps(StepProfile& profile) : profile_(profile) {}
    // `needs_gpu`: the function reads what the stream produced before this point (else it only
    // writes what the stream reads after it, e.g. the CPU experts' sum after their inputs
    // arrived in an earlier step). Signalled only between record_signalled(true) and (false).
    void run(cudaStream_t s, StepMode mode, std::function<void()> fn, bool needs_gpu = true);
    // Host work that only reads what earlier steps left on the host (expert deferral: layer L's
    // deferred experts) and whose result the stream needs only later: Signalled lets the stream
    // go on at once (the host thread runs `fn` after the steps recorded before it) and returns
    // a ticket for wait_detached at the point of use; Eager runs it now, Graph as a host node
    // (both in order: nothing to wait for later; the ticket is 0).
    uint32_t run_detached(cudaStream_t s, StepMode mode, std::function<void()> fn);
    // Queued on `s` (Signalled): what follows waits until the detached step `ticket` ran.
    void wait_detached(cudaStream_t s, StepMode mode, uint32_t ticket);
    // Around the capture of a graph with Signalled steps (numbered from 1 in capture order).
    void record_signalled(bool on);
    // Launches `graph` (recorded with record_signalled) on `s` and runs its functions in order,
    // each when the stream reached it. Rethrows the first error; the stream is released.
    void replay_signalled(cudaGraphExec_t graph, cudaStream_t s);
    // Rethrows the first error a host node met since the last call (call after a graph ran).
    void rethrow_pending();
    // Drops the functions recorded for a graph (when the graph is dropped).
    void clear_recorded() {
        recorded_.clear();
        signalled_.clear();
    }

  private:
    // `layer`: the trace context's layer when the step was recorded, restored when a replay
    // runs it so that its spans name their layer (core/trace.h).
    struct Node {
        std::function<void()> fn;
        HostSteps* owner;
        int32_t layer;
    };
    struct Signalled {
        uint32_t n;
        bool needs_gpu;
        std::function<void()> fn;
        int32_t layer;
    };
    static void CUDART_CB trampoline(void* p);

    StepProfile& profile_;
    std::vector<std::unique_ptr<Node>> recorded_;  // Graph
    std::exception_ptr error_;
    cuda::HostSignal signal_;
    bool recording_ = false;
    std::vector<Signalled> signalled_;  // recorded for replay_signalled
};

}  // namespace moe::hybrid
