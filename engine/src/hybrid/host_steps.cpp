// host_steps.h (CUDA builds only).
#if defined(MOE_HAVE_CUDA)

#include "hybrid/host_steps.h"

#include "core/trace.h"
#include "cuda/cuda_check.h"

namespace moe::hybrid {

void HostSteps::run(cudaStream_t s, StepMode mode, std::function<void()> fn, bool needs_gpu) {
    switch (mode) {
        case StepMode::Eager: {
            if (needs_gpu) {
                StageTimer t(profile_, StepProfile::GpuWait);
                MOE_CUDA(cudaStreamSynchronize(s));
            }
            fn();
            return;
        }
        case StepMode::Graph:
            recorded_.push_back(
                std::make_unique<Node>(Node{std::move(fn), this, trace::current_layer()}));
            MOE_CUDA(cudaLaunchHostFunc(s, &HostSteps::trampoline, recorded_.back().get()));
            return;
        case StepMode::Signalled: {
            require(recording_, "signalled host steps run only from a recorded graph");
            const uint32_t n = uint32_t(signalled_.size()) + 1;
            if (needs_gpu) signal_.gpu_reached(s, n);
            signal_.gpu_wait_done(s, n);
            signalled_.push_back({n, needs_gpu, std::move(fn), trace::current_layer()});
            return;
        }
    }
}

uint32_t HostSteps::run_detached(cudaStream_t s, StepMode mode, std::function<void()> fn) {
    if (mode != StepMode::Signalled) {
        run(s, mode, std::move(fn), false);
        return 0;
    }
    require(recording_, "signalled host steps run only from a recorded graph");
    const uint32_t n = uint32_t(signalled_.size()) + 1;
    signalled_.push_back({n, false, std::move(fn), trace::current_layer()});
    return n;
}

void HostSteps::wait_detached(cudaStream_t s, StepMode mode, uint32_t ticket) {
    if (mode == StepMode::Signalled && ticket > 0) signal_.gpu_wait_done(s, ticket);
}

void HostSteps::record_signalled(bool on) {
    recording_ = on;
    if (on) signalled_.clear();
}

void HostSteps::replay_signalled(cudaGraphExec_t graph, cudaStream_t s) {
    signal_.reset();  // the graph's waits count from 1 again
    MOE_CUDA(cudaGraphLaunch(graph, s));
    for (const Signalled& p : signalled_) {
        try {
            if (!error_) {
                if (trace::enabled()) trace::set_layer(p.layer);
                if (p.needs_gpu) {
                    StageTimer t(profile_, StepProfile::GpuWait);
                    signal_.host_wait_reached(s, p.n);
                }
                p.fn();
            }
        } catch (...) {
            if (!error_) error_ = std::current_exception();
        }
        // Released even after an error: a stream left waiting could never be synchronised.
        signal_.host_done(p.n);
    }
    rethrow_pending();
}

void CUDART_CB HostSteps::trampoline(void* p) {
    auto* node = static_cast<Node*>(p);
    if (trace::enabled()) trace::set_layer(node->layer);
    try {
        node->fn();
    } catch (...) {
        if (!node->owner->error_) node->owner->error_ = std::current_exception();
    }
}

void HostSteps::rethrow_pending() {
    if (error_) {
        std::exception_ptr e = error_;
        error_ = nullptr;
        std::rethrow_exception(e);
    }
}

}  // namespace moe::hybrid

#endif  // MOE_HAVE_CUDA
