#include "timeline_model.h"

#include <algorithm>
#include <map>

namespace moeui {

using moe::profiler::Span;
using moe::profiler::Stage;

void TimelineModel::set_capture(moe::profiler::Capture capture) {
    capture_ = std::move(capture);
    capture_.sort();  // parents before their children: the depth pass below relies on it
    const std::vector<Span>& spans = capture_.spans;
    rows_.clear();
    tokens_.clear();
    max_duration_.clear();
    row_of_.assign(spans.size(), 0);
    depth_of_.assign(spans.size(), 0);

    // Rows in the capture's lane order; lanes that only spans name come last.
    std::map<int32_t, int> row_index;
    auto row_for = [&](int32_t lane, const std::string& name) {
        auto [it, added] = row_index.emplace(lane, int(rows_.size()));
        if (added) {
            Row r;
            r.lane = lane;
            r.name = name.empty() ? "lane " + std::to_string(lane) : name;
            rows_.push_back(std::move(r));
            max_duration_.push_back(0);
        }
        return it->second;
    };
    for (const auto& l : capture_.lanes) row_for(l.id, l.name);

    // Depth: spans still open (ending after this one begins) on the lane's stack.
    std::vector<std::vector<int64_t>> open;
    begin_ = spans.empty() ? 0 : spans.front().begin_ns;
    end_ = begin_;
    for (size_t i = 0; i < spans.size(); ++i) {
        const Span& s = spans[i];
        const int r = row_for(s.lane, {});
        if (open.size() < rows_.size()) open.resize(rows_.size());
        std::vector<int64_t>& stack = open[size_t(r)];
        while (!stack.empty() && stack.back() <= s.begin_ns) stack.pop_back();
        const int depth = int(stack.size());
        stack.push_back(s.end_ns);
        row_of_[i] = r;
        depth_of_[i] = depth;
        Row& row = rows_[size_t(r)];
        if (int(row.by_depth.size()) <= depth) row.by_depth.resize(size_t(depth) + 1);
        row.by_depth[size_t(depth)].push_back(i);  // spans are sorted: stays sorted by begin
        row.depths = std::max(row.depths, depth + 1);
        max_duration_[size_t(r)] = std::max(max_duration_[size_t(r)], s.duration_ns());
        end_ = std::max(end_, s.end_ns);
        if (s.stage == Stage::Step) tokens_.push_back({s.begin_ns, s.token});
    }
    float y = 0;
    for (Row& r : rows_) {
        r.top = y;
        r.height = float(r.depths) * kRowHeight + kLaneGap;
        y += r.height;
    }
    height_ = y;
}

float TimelineModel::span_top(size_t i) const {
    return rows_[size_t(row_of_[i])].top + float(depth_of_[i]) * kRowHeight;
}

std::vector<size_t> TimelineModel::visible(int row, int depth, int64_t t0, int64_t t1) const {
    std::vector<size_t> out;
    if (row < 0 || row >= int(rows_.size())) return out;
    const Row& r = rows_[size_t(row)];
    if (depth < 0 || depth >= int(r.by_depth.size())) return out;
    const std::vector<size_t>& ids = r.by_depth[size_t(depth)];
    const std::vector<Span>& spans = capture_.spans;
    // No span of this row is longer than max_duration_: none beginning before t0 - that ends
    // after t0, so the scan can start there.
    const int64_t from = t0 - max_duration_[size_t(row)];
    auto it = std::lower_bound(ids.begin(), ids.end(), from,
                               [&](size_t i, int64_t t) { return spans[i].begin_ns < t; });
    for (; it != ids.end() && spans[*it].begin_ns < t1; ++it)
        if (spans[*it].end_ns >= t0) out.push_back(*it);
    return out;
}

std::optional<size_t> TimelineModel::hit_test(int64_t t_ns, float y, int64_t slop_ns) const {
    for (size_t r = 0; r < rows_.size(); ++r) {
        const Row& row = rows_[r];
        if (y < row.top || y >= row.top + row.height) continue;
        const int depth = int((y - row.top) / kRowHeight);
        std::optional<size_t> best;
        int64_t best_distance = slop_ns + 1;
        for (size_t i : visible(int(r), depth, t_ns - slop_ns, t_ns + slop_ns + 1)) {
            const Span& s = capture_.spans[i];
            const int64_t d = t_ns < s.begin_ns ? s.begin_ns - t_ns
                              : t_ns > s.end_ns ? t_ns - s.end_ns
                                                : 0;
            if (d < best_distance) {
                best_distance = d;
                best = i;
            }
        }
        return best;
    }
    return std::nullopt;
}

}  // namespace moeui
