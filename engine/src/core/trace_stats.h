#pragma once
// Per-stage statistics of a capture (the profiler's table, `generate --trace` summaries).
#include <cstdint>
#include <vector>

#include "core/trace.h"

namespace moe::trace {

struct StageStats {
    Stage stage = Stage::Other;
    int64_t count = 0;
    int64_t total_ns = 0;
    double mean_ns = 0;
    int64_t p95_ns = 0;  // nearest rank: the smallest duration >= 95 % of the spans'
    int64_t max_ns = 0;
};

// One row per stage that has spans, in Stage order; only spans of [from_ns, to_ns) count
// (a span counts when it begins there), by default all.
std::vector<StageStats> stage_statistics(const Capture& capture, int64_t from_ns = INT64_MIN,
                                         int64_t to_ns = INT64_MAX);

}  // namespace moe::trace
