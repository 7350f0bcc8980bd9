#pragma once
// GPU-side time of the labelled stretches of a step (CUDA builds only; MOE_HYBRID_PROFILE=1):
// mark(label) records an event; once the step finished, the time between each mark and the
// one before it is added to that mark's label. Marks are off unless a profiled step is running
// (and never inside a graph capture), so normal steps pay one branch per mark.
// While a trace capture runs (core/trace.h), collect() also records each stretch as a span on
// the "GPU stream" lane, in host time: the stream's last mark is taken as the moment collect()
// runs (it runs right after the host synchronised with the stream), so the spans may sit up to
// that synchronisation's latency late, but their lengths are the events' own.
#include <cuda_runtime_api.h>

#include <map>
#include <string>
#include <vector>

namespace moe::hybrid {

class GpuTimeline {
  public:
    GpuTimeline() = default;
    ~GpuTimeline();
    GpuTimeline(const GpuTimeline&) = delete;
    GpuTimeline& operator=(const GpuTimeline&) = delete;

    void set_active(bool on) {
        active_ = on;
        labels_.clear();  // marks of a step that failed midway
        layers_.clear();
    }
    bool active() const { return active_; }
    void mark(cudaStream_t s, const char* label);
    // After the stream finished the step: adds the stretches and forgets the marks.
    void collect();
    // "label total-ms (share)" lines, largest first, per step of `steps`.
    std::string summary(int64_t steps) const;

  private:
    bool active_ = false;
    std::vector<cudaEvent_t> events_;  // reused from step to step
    std::vector<const char*> labels_;  // of the marks of the running step
    std::vector<int32_t> layers_;      // the trace context's layer at each mark
    std::map<std::string, double> ms_;
};

}  // namespace moe::hybrid
