// gpu_timeline.h (CUDA builds only).
#if defined(MOE_HAVE_CUDA)

#include "hybrid/gpu_timeline.h"

#include <algorithm>
#include <cstdio>

#include "cuda/cuda_check.h"

namespace moe::hybrid {

GpuTimeline::~GpuTimeline() {
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
}

void GpuTimeline::mark(cudaStream_t s, const char* label) {
    if (!active_) return;
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    MOE_CUDA(cudaStreamIsCapturing(s, &capture));
    if (capture != cudaStreamCaptureStatusNone) return;
    const size_t i = labels_.size();
    if (i == events_.size()) {
        cudaEvent_t e = nullptr;
        MOE_CUDA(cudaEventCreate(&e));
        events_.push_back(e);
    }
    MOE_CUDA(cudaEventRecord(events_[i], s));
    labels_.push_back(label);
}

void GpuTimeline::collect() {
    for (size_t i = 1; i < labels_.size(); ++i) {
        float ms = 0;
        MOE_CUDA(cudaEventElapsedTime(&ms, events_[i - 1], events_[i]));
        ms_[labels_[i]] += ms;
    }
    labels_.clear();
}

std::string GpuTimeline::summary(int64_t steps) const {
    std::vector<std::pair<double, std::string>> rows;
    double total = 0;
    for (const auto& [label, ms] : ms_) {
        rows.emplace_back(ms, label);
        total += ms;
    }
    std::sort(rows.rbegin(), rows.rend());
    std::string out = "GPU time per decode step by stretch (ms):";
    char buf[160];
    for (const auto& [ms, label] : rows) {
        std::snprintf(buf, sizeof buf, "\n  %-28s %8.4f  %5.1f %%", label.c_str(),
                      ms / double(std::max<int64_t>(1, steps)), total > 0 ? 100 * ms / total : 0);
        out += buf;
    }
    return out;
}

}  // namespace moe::hybrid

#endif  // MOE_HAVE_CUDA
