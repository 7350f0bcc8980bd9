#pragma once
// The profiler timeline's data side, free of Qt and OpenGL so tests can drive it: a capture
// laid out as one row per lane (thread or GPU stream), each span at its nesting depth inside
// its lane, the token boundaries (the starts of step spans), and hit-testing of a point in
// (time, y) to the span drawn there. Drawing (profiler_draw.cpp) only reads this.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "api/profiler.h"

namespace moeui {

class TimelineModel {
  public:
    static constexpr float kRowHeight = 18.0f;  // one nesting depth
    static constexpr float kLaneGap = 6.0f;     // between lanes

    struct Row {
        int32_t lane = 0;
        std::string name;
        int depths = 1;  // nesting depths of the lane's spans (at least 1)
        float top = 0, height = 0;
        std::vector<std::vector<size_t>> by_depth;  // span indexes per depth, by begin
    };
    struct TokenMark {
        int64_t t_ns = 0;
        int64_t token = -1;
    };

    void set_capture(moe::profiler::Capture capture);
    const moe::profiler::Capture& capture() const { return capture_; }
    bool empty() const { return capture_.spans.empty(); }

    const std::vector<Row>& rows() const { return rows_; }
    int row_of(size_t span) const { return row_of_[span]; }
    int depth_of(size_t span) const { return depth_of_[span]; }
    // Where span `i`'s bar is drawn, from the top of the lanes.
    float span_top(size_t i) const;
    float content_height() const { return height_; }
    int64_t begin_ns() const { return begin_; }
    int64_t end_ns() const { return end_; }
    const std::vector<TokenMark>& tokens() const { return tokens_; }

    // The span drawn at (t_ns, y): in the row and depth at y, the one containing t, else the
    // nearest within `slop_ns` (so thin spans can be hovered at low zoom).
    std::optional<size_t> hit_test(int64_t t_ns, float y, int64_t slop_ns = 0) const;
    // Indexes of the spans of `row` at `depth` that intersect [t0, t1), in time order.
    std::vector<size_t> visible(int row, int depth, int64_t t0, int64_t t1) const;

  private:
    moe::profiler::Capture capture_;
    std::vector<Row> rows_;
    std::vector<int> row_of_, depth_of_;
    std::vector<int64_t> max_duration_;  // per row: for culling by begin time
    std::vector<TokenMark> tokens_;
    float height_ = 0;
    int64_t begin_ = 0, end_ = 0;
};

}  // namespace moeui
