#include "core/trace_stats.h"

#include <algorithm>
#include <array>

namespace moe::trace {

std::vector<StageStats> stage_statistics(const Capture& capture, int64_t from_ns, int64_t to_ns) {
    std::array<std::vector<int64_t>, size_t(Stage::Count)> durations;
    for (const Span& s : capture.spans) {
        if (s.begin_ns < from_ns || s.begin_ns >= to_ns) continue;
        durations[std::min(size_t(s.stage), size_t(Stage::Other))].push_back(s.duration_ns());
    }
    std::vector<StageStats> rows;
    for (size_t i = 0; i < durations.size(); ++i) {
        std::vector<int64_t>& d = durations[i];
        if (d.empty()) continue;
        std::sort(d.begin(), d.end());
        StageStats r;
        r.stage = Stage(i);
        r.count = int64_t(d.size());
        for (int64_t v : d) r.total_ns += v;
        r.mean_ns = double(r.total_ns) / double(r.count);
        // Nearest rank: ceil(0.95 n)-th smallest.
        const size_t rank = size_t((95 * d.size() + 99) / 100);
        r.p95_ns = d[std::max<size_t>(rank, 1) - 1];
        r.max_ns = d.back();
        rows.push_back(r);
    }
    return rows;
}

}  // namespace moe::trace
