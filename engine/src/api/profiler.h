#pragma once
// The profiler's side of the narrow API: the engine's trace capture (core/trace.h) as the
// desktop app and the CLI use it. Captures are process-wide, so these work from any thread
// and need no Engine request: the profiler view polls snapshot() while a chat runs.
#include <string>
#include <string_view>
#include <vector>

#include "core/trace.h"
#include "core/trace_chrome.h"
#include "core/trace_stats.h"

namespace moe::profiler {

using trace::Capture;
using trace::Lane;
using trace::Span;
using trace::Stage;
using trace::StageStats;

inline void start_capture() {
    trace::start();
}
inline void stop_capture() {
    trace::stop();
}
inline bool capturing() {
    return trace::enabled();
}
inline Capture snapshot() {
    return trace::snapshot();
}
inline const char* stage_name(Stage s) {
    return trace::stage_name(s);
}
inline std::vector<StageStats> statistics(const Capture& c, int64_t from_ns = INT64_MIN,
                                          int64_t to_ns = INT64_MAX) {
    return trace::stage_statistics(c, from_ns, to_ns);
}

// Chrome trace JSON files (Perfetto opens them). Throw moe::Error with a message a user can
// act on (the path, why it could not be read or written).
void save_chrome_trace(const Capture& c, const std::string& path);
Capture load_chrome_trace(const std::string& path);

}  // namespace moe::profiler
