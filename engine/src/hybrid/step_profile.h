#pragma once
// Where the hybrid decoder's host thread spends a decode step: waiting for the GPU, routing,
// computing the CPU experts; the rest is queuing GPU work. Switched on by MOE_HYBRID_PROFILE=1
// (the summary goes to stderr when the model is unloaded); costs two clock reads per stage.
#include <array>
#include <chrono>
#include <cstdint>
#include <string>

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

// Adds the time from construction to destruction to a stage of an active profile.
class StageTimer {
  public:
    StageTimer(StepProfile& p, StepProfile::Stage s) : p_(p.active ? &p : nullptr), s_(s) {
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
};

}  // namespace moe::hybrid
