#pragma once
// Engine tracing: timed spans (stage, name, layer, token) on lanes (one per thread, plus named
// lanes such as a GPU stream), collected while a capture runs and read as a Capture (profiler
// view, Chrome trace export: core/trace_chrome.h, statistics: core/trace_stats.h).
//
// Cost: when no capture runs, a Scope is one relaxed atomic load and a branch (no clock read,
// no allocation, nothing recorded). While one runs, a span is two clock reads and an append to
// the calling thread's own ring buffer under a mutex only a snapshot ever contends for.
// Buffers are per thread so that workers never share a cache line while recording.
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moe::trace {

// What a span measured. Names (stage_name) are stable: they appear in Chrome trace files.
enum class Stage : uint8_t {
    Step,           // one forward call (a decode step or a prefill batch): a token boundary
    Layer,          // one decoder layer
    Attention,      // norm + attention
    Router,         // the router's logits and top-k
    Experts,        // the feed-forward part: routed experts (CPU path) or the dense MLP
    SharedExperts,  // shared experts
    CpuExperts,     // the hybrid path's CPU-resident experts
    GpuExperts,     // GPU-resident experts (GPU lane)
    CopyToHost,     // device-to-host copies (GPU lane)
    CopyBack,       // host-to-device copies and the add (GPU lane)
    GpuWait,        // the host waiting for the GPU
    Head,           // final norm and output head
    Worker,         // a worker thread's share of a parallel loop
    Other,
    Count
};

const char* stage_name(Stage s);
// The stage called `name`; Other for unknown names (a foreign trace).
Stage stage_from_name(std::string_view name);

struct Span {
    int64_t begin_ns = 0, end_ns = 0;  // from the capture's start
    int32_t lane = 0;                  // Capture::lanes[i].id
    Stage stage = Stage::Other;
    int32_t layer = -1;  // -1: not a layer's
    int64_t token = -1;  // position of the step's first token in the sequence; -1: unknown
    std::string name;
    int64_t duration_ns() const { return end_ns - begin_ns; }
};

struct Lane {
    int32_t id = 0;
    std::string name;  // "main", "moe-worker-3", "GPU stream 0", ...
};

struct Capture {
    std::vector<Lane> lanes;
    std::vector<Span> spans;  // sorted by begin, then longer first (parents before children)
    int64_t dropped = 0;      // spans overwritten because a lane's ring was full
    const Lane* lane(int32_t id) const;
    void sort();
};

namespace detail {
extern std::atomic<bool> g_on;
int64_t now_ns();
void record(int64_t begin_ns, int64_t end_ns, Stage stage, const char* name, int32_t layer,
            int64_t token);
}  // namespace detail

// True while a capture runs: the one check instrumented code pays when tracing is off.
inline bool enabled() {
    return detail::g_on.load(std::memory_order_relaxed);
}

// Starts a capture: forgets what earlier ones recorded; each lane keeps its last
// `spans_per_lane` spans (a ring: a long live capture shows its recent past).
void start(size_t spans_per_lane = size_t(1) << 18);
void stop();
// The spans recorded so far (also while a capture runs: live view).
Capture snapshot();
// Spans appended to lanes since start() (not counting the ones a ring overwrote); for tests.
int64_t recorded();
// Lane buffers allocated since the process started; for the tests that tracing allocates
// nothing while off.
int64_t lanes_allocated();

// Names the calling thread's lane (kept until the thread ends; costs nothing while off).
void set_thread_name(std::string name);
// The layer and token position spans are attributed to when their Scope does not say (the
// decoders set them per layer and step, so that the spans of router, experts and worker
// threads carry them). Global, not per thread: the workers run the layer the decoder runs.
void set_context(int32_t layer, int64_t token);
void set_layer(int32_t layer);
int32_t current_layer();
int64_t current_token();
constexpr int64_t kFromContext = -2;

// Records a span with explicit times on a named lane (GPU streams: times from CUDA events
// turned into host time by the caller). Does nothing while off.
void record_on_lane(const std::string& lane, int64_t begin_ns, int64_t end_ns, Stage stage,
                    const char* name, int32_t layer, int64_t token);
// The clock spans use (steady_clock, ns): for callers converting other clocks.
inline int64_t now_ns() {
    return detail::now_ns();
}

// Times its own lifetime as a span of the calling thread's lane. `name` must outlive the
// capture (a string literal): it is stored as a pointer while recording.
class Scope {
  public:
    Scope(Stage stage, const char* name, int32_t layer = int32_t(kFromContext),
          int64_t token = kFromContext) {
        if (!enabled()) return;
        stage_ = stage;
        name_ = name;
        layer_ = layer == kFromContext ? current_layer() : layer;
        token_ = token == kFromContext ? current_token() : token;
        begin_ = detail::now_ns();
    }
    ~Scope() {
        if (name_) detail::record(begin_, detail::now_ns(), stage_, name_, layer_, token_);
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

  private:
    const char* name_ = nullptr;  // null: tracing was off at construction
    Stage stage_ = Stage::Other;
    int32_t layer_ = -1;
    int64_t token_ = -1;
    int64_t begin_ = 0;
};

}  // namespace moe::trace
