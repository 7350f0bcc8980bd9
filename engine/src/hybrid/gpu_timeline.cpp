// gpu_timeline.h (CUDA builds only).
#if defined(MOE_HAVE_CUDA)

#include "hybrid/gpu_timeline.h"

#include <algorithm>
#include <cstdio>
#include <string_view>

#include "core/trace.h"
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
    layers_.push_back(trace::current_layer());
}

namespace {

// The trace stage of a stretch, from the labels gpu_decoder.cpp and gpu_moe_layer.cpp mark
// (a stretch is named by the mark that ends it).
trace::Stage stretch_stage(std::string_view label) {
    auto has = [&](const char* s) { return label.find(s) != std::string_view::npos; };
    if (has("router")) return trace::Stage::Router;
    if (has("copies to host")) return trace::Stage::CopyToHost;
    if (has("GPU idle")) return trace::Stage::GpuWait;  // the stream waits for the host
    if (has("GPU experts")) return trace::Stage::GpuExperts;
    if (has("CPU sum")) return trace::Stage::CopyBack;
    if (has("post norm")) return trace::Stage::Attention;
    if (has("dense MLP")) return trace::Stage::Experts;
    return trace::Stage::Other;
}

}  // namespace

void GpuTimeline::collect() {
    const bool tracing = trace::enabled() && labels_.size() > 1;
    const int64_t now = tracing ? trace::now_ns() : 0;
    float total_ms = 0;
    if (tracing) MOE_CUDA(cudaEventElapsedTime(&total_ms, events_[0], events_[labels_.size() - 1]));
    const int64_t start = now - int64_t(double(total_ms) * 1e6);
    float begin_ms = 0;
    for (size_t i = 1; i < labels_.size(); ++i) {
        float ms = 0;
        MOE_CUDA(cudaEventElapsedTime(&ms, events_[i - 1], events_[i]));
        ms_[labels_[i]] += ms;
        if (tracing) {
            const int64_t b = start + int64_t(double(begin_ms) * 1e6);
            trace::record_on_lane("GPU stream", b, b + int64_t(double(ms) * 1e6),
                                  stretch_stage(labels_[i]), labels_[i], layers_[i],
                                  trace::current_token());
        }
        begin_ms += ms;
    }
    labels_.clear();
    layers_.clear();
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
