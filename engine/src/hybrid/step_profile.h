#pragma once
// Where the hybrid decoder's host thread spends a decode step: waiting for the GPU, routing,
// computing the CPU experts; the rest is queuing GPU work. Switched on by MOE_HYBRID_PROFILE=1
// (the summary goes to stderr when the model is unloaded); costs two clock reads per stage.
// The same stages become trace spans (GPU wait, routing, CPU experts) while a trace capture
// runs, attributed to the layer and token of the trace context.
#include <array>
#include <chrono>
#include <cstdint>
#include <string>

#include "core/trace.h"

namespace moe::hybrid {

struct StepProfile {
    enum Stage { GpuWait, Route, CpuExperts, Stages };
    bool enabled = false;  // MOE_HYBRID_PROFILE set
    bool active = false;   // inside a profiled step
    std::array<double, Stages> seconds{};
    double step_seconds = 0;
    int64_t steps = 0, signalled_steps = 0;

    // "N decode steps (M signalled): per step X ms = gpu wait ..., route ..., ..."
    std::string summary(int64_t layers) const;
};

// The trace stage and span name of a profile stage (the same stretches feed both); inline so
// that a StageTimer costs nothing more than the trace check while no capture runs.
inline trace::Stage trace_stage(StepProfile::Stage s) {
    switch (s) {
        case StepProfile::GpuWait:
            return trace::Stage::GpuWait;
        case StepProfile::Route:
            return trace::Stage::Router;
        case StepProfile::CpuExperts:
            return trace::Stage::CpuExperts;
        default:
            return trace::Stage::Other;
    }
}

inline const char* trace_name(StepProfile::Stage s) {
    switch (s) {
        case StepProfile::GpuWait:
            return "GPU wait (host)";
        case StepProfile::Route:
            return "routing (host)";
        case StepProfile::CpuExperts:
            return "CPU experts";
        default:
            return "host";
    }
}

// Adds the time from construction to destruction to a stage of an active profile, and records
// it as a trace span (core/trace.h) while a capture runs.
class StageTimer {
  public:
    StageTimer(StepProfile& p, StepProfile::Stage s)
        : p_(p.active ? &p : nullptr), s_(s), span_(trace_stage(s), trace_name(s)) {
        if (p_) t0_ = std::chrono::steady_clock::now();
    }
    ~StageTimer() {
        if (p_)
            p_->seconds[size_t(s_)] +=
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    }
    StageTimer(const StageTimer&) = delete;
    StageTimer& operator=(const StageTimer&) = delete;

  private:
    StepProfile* p_;
    StepProfile::Stage s_;
    std::chrono::steady_clock::time_point t0_;
    trace::Scope span_;
};

}  // namespace moe::hybrid
