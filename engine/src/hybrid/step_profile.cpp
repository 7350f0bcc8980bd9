#include "hybrid/step_profile.h"

#include <cstdio>

namespace moe::hybrid {

std::string StepProfile::summary(int64_t layers) const {
    if (steps == 0) return "hybrid decode profile: no decode steps";
    const double n = double(steps), ms = 1e3;
    const double known = seconds[GpuWait] + seconds[Route] + seconds[CpuExperts];
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "hybrid decode profile: %lld steps (%lld signalled), per step %.3f ms = "
                  "GPU wait %.3f + routing %.3f + CPU experts %.3f + queuing/other %.3f "
                  "(per layer: %.1f us, of which CPU experts %.1f us)",
                  (long long)steps, (long long)signalled_steps, ms * step_seconds / n,
                  ms * seconds[GpuWait] / n, ms * seconds[Route] / n, ms * seconds[CpuExperts] / n,
                  ms * (step_seconds - known) / n, 1e6 * step_seconds / n / double(layers),
                  1e6 * seconds[CpuExperts] / n / double(layers));
    return buf;
}

}  // namespace moe::hybrid
