#include "core/trace.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>

namespace moe::trace {

namespace {

constexpr std::array<const char*, size_t(Stage::Count)> kStageNames = {
    "step",           "layer",       "attention",   "router",       "experts",
    "shared experts", "CPU experts", "GPU experts", "copy to host", "copy back",
    "GPU wait",       "head",        "worker",      "other"};

// Spans as recorded: the name stays a pointer until a snapshot copies it.
struct RawSpan {
    int64_t begin_ns, end_ns, token;
    const char* name;
    int32_t layer;
    Stage stage;
};

// One lane's ring of spans. The owning thread appends; a snapshot copies under the same mutex
// (uncontended unless a snapshot runs, so appending stays cheap).
struct LaneBuffer {
    int32_t id = 0;
    std::string name;
    std::mutex mutex;
    std::vector<RawSpan> ring;
    size_t next = 0;       // where the next span goes once the ring is full
    uint64_t capture = 0;  // the capture the contents belong to
    int64_t dropped = 0;

    void append(const RawSpan& s, size_t capacity) {
        if (ring.size() < capacity) {
            ring.push_back(s);
            return;
        }
        if (capacity == 0) return;
        ring[next] = s;
        next = (next + 1) % capacity;
        ++dropped;
    }
    void clear() {
        ring.clear();
        next = 0;
        dropped = 0;
    }
};

struct Registry {
    std::mutex mutex;
    std::vector<std::shared_ptr<LaneBuffer>> lanes;  // threads' and named lanes
    std::map<std::string, std::shared_ptr<LaneBuffer>> named;
    int32_t next_id = 1;
    std::atomic<uint64_t> capture{0};  // incremented by start(): lanes clear lazily
    std::atomic<size_t> capacity{0};
    std::atomic<int64_t> epoch_ns{0};
    std::atomic<int64_t> recorded{0};
    std::atomic<int64_t> allocated{0};

    std::shared_ptr<LaneBuffer> make(std::string name) {
        auto b = std::make_shared<LaneBuffer>();
        std::lock_guard<std::mutex> lock(mutex);
        b->id = next_id++;
        b->name = name.empty() ? "thread " + std::to_string(b->id) : std::move(name);
        lanes.push_back(b);
        allocated.fetch_add(1, std::memory_order_relaxed);
        return b;
    }
};

Registry& registry() {
    static Registry* r = new Registry;  // never destroyed: threads may record during exit
    return *r;
}

struct ThreadState {
    std::shared_ptr<LaneBuffer> lane;  // made on the first span recorded
    std::string name;
};
thread_local ThreadState t_state;

std::atomic<int64_t> g_token{-1};
std::atomic<int32_t> g_layer{-1};

void append(LaneBuffer& b, const RawSpan& s) {
    Registry& r = registry();
    const uint64_t capture = r.capture.load(std::memory_order_acquire);
    std::lock_guard<std::mutex> lock(b.mutex);
    if (b.capture != capture) {  // left over from an earlier capture
        b.clear();
        b.capture = capture;
    }
    b.append(s, r.capacity.load(std::memory_order_relaxed));
    r.recorded.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

namespace detail {

std::atomic<bool> g_on{false};

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

void record(int64_t begin_ns, int64_t end_ns, Stage stage, const char* name, int32_t layer,
            int64_t token) {
    if (!enabled()) return;  // stopped while the span ran
    ThreadState& t = t_state;
    if (!t.lane) t.lane = registry().make(t.name);
    append(*t.lane, RawSpan{begin_ns, end_ns, token, name, layer, stage});
}

}  // namespace detail

const char* stage_name(Stage s) {
    const size_t i = size_t(s);
    return i < kStageNames.size() ? kStageNames[i] : "other";
}

Stage stage_from_name(std::string_view name) {
    for (size_t i = 0; i < kStageNames.size(); ++i)
        if (name == kStageNames[i]) return Stage(i);
    return Stage::Other;
}

const Lane* Capture::lane(int32_t id) const {
    for (const Lane& l : lanes)
        if (l.id == id) return &l;
    return nullptr;
}

void Capture::sort() {
    std::stable_sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
        if (a.begin_ns != b.begin_ns) return a.begin_ns < b.begin_ns;
        return a.end_ns > b.end_ns;
    });
}

void start(size_t spans_per_lane) {
    Registry& r = registry();
    detail::g_on.store(false, std::memory_order_relaxed);
    {
        // Lanes of threads that ended are no longer needed once their spans are forgotten
        // (a live thread's lane is also held by the thread, a named one by `named`).
        std::lock_guard<std::mutex> lock(r.mutex);
        std::erase_if(r.lanes,
                      [](const std::shared_ptr<LaneBuffer>& b) { return b.use_count() == 1; });
    }
    r.capacity.store(spans_per_lane, std::memory_order_relaxed);
    r.recorded.store(0, std::memory_order_relaxed);
    r.epoch_ns.store(detail::now_ns(), std::memory_order_relaxed);
    r.capture.fetch_add(1, std::memory_order_release);
    detail::g_on.store(true, std::memory_order_release);
}

void stop() {
    detail::g_on.store(false, std::memory_order_release);
}

Capture snapshot() {
    Registry& r = registry();
    std::vector<std::shared_ptr<LaneBuffer>> lanes;
    {
        std::lock_guard<std::mutex> lock(r.mutex);
        lanes = r.lanes;
    }
    const uint64_t capture = r.capture.load(std::memory_order_acquire);
    const int64_t epoch = r.epoch_ns.load(std::memory_order_relaxed);
    Capture c;
    for (const auto& b : lanes) {
        std::lock_guard<std::mutex> lock(b->mutex);
        if (b->capture != capture || b->ring.empty()) continue;
        c.lanes.push_back({b->id, b->name});
        c.dropped += b->dropped;
        for (const RawSpan& s : b->ring) {
            if (s.begin_ns < epoch) continue;  // began before this capture
            c.spans.push_back({s.begin_ns - epoch, s.end_ns - epoch, b->id, s.stage, s.layer,
                               s.token, s.name ? s.name : ""});
        }
    }
    std::sort(c.lanes.begin(), c.lanes.end(),
              [](const Lane& a, const Lane& b) { return a.id < b.id; });
    c.sort();
    return c;
}

int64_t recorded() {
    return registry().recorded.load(std::memory_order_relaxed);
}

int64_t lanes_allocated() {
    return registry().allocated.load(std::memory_order_relaxed);
}

void set_thread_name(std::string name) {
    ThreadState& t = t_state;
    t.name = std::move(name);
    if (t.lane) {
        std::lock_guard<std::mutex> lock(t.lane->mutex);
        t.lane->name = t.name;
    }
}

void set_context(int32_t layer, int64_t token) {
    g_layer.store(layer, std::memory_order_relaxed);
    g_token.store(token, std::memory_order_relaxed);
}

void set_layer(int32_t layer) {
    g_layer.store(layer, std::memory_order_relaxed);
}

int32_t current_layer() {
    return g_layer.load(std::memory_order_relaxed);
}

int64_t current_token() {
    return g_token.load(std::memory_order_relaxed);
}

void record_on_lane(const std::string& lane, int64_t begin_ns, int64_t end_ns, Stage stage,
                    const char* name, int32_t layer, int64_t token) {
    if (!enabled()) return;
    Registry& r = registry();
    std::shared_ptr<LaneBuffer> b;
    {
        std::lock_guard<std::mutex> lock(r.mutex);
        auto it = r.named.find(lane);
        if (it != r.named.end()) b = it->second;
    }
    if (!b) {
        b = r.make(lane);
        std::lock_guard<std::mutex> lock(r.mutex);
        b = r.named.emplace(lane, b).first->second;  // another thread may have made it first
    }
    append(*b, RawSpan{begin_ns, end_ns, token, name, layer, stage});
}

}  // namespace moe::trace
