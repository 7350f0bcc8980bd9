#pragma once
// The profiler timeline's viewport and mouse interaction, free of Qt and OpenGL: which time
// each pixel column shows (start_ns + x * ns_per_px), zoom about the pointer (wheel), pan by
// dragging, and the measure tool (shift-drag: the time between the press and the pointer).
// x is in pixels from the left edge of the time area.
#include <cstdint>
#include <optional>
#include <utility>

namespace moeui {

class TimelineView {
  public:
    static constexpr double kMinNsPerPx = 0.25;  // beyond this a nanosecond is 4 px wide
    static constexpr double kMaxNsPerPx = 1e9;   // a second per pixel
    static constexpr double kWheelStep = 1.25;   // zoom factor per wheel notch

    double start_ns() const { return start_ns_; }
    double ns_per_px() const { return ns_per_px_; }
    double width() const { return width_; }
    void set_width(double px) { width_ = px > 1 ? px : 1; }

    double x_of(double t_ns) const { return (t_ns - start_ns_) / ns_per_px_; }
    double t_of(double x) const { return start_ns_ + x * ns_per_px_; }
    double end_ns() const { return t_of(width_); }

    // Shows [begin, end] across the width with a small margin; the view follows the capture
    // again (live mode refits on each refresh until the user zooms or pans).
    void fit(int64_t begin_ns, int64_t end_ns);
    // factor > 1 zooms in; the time under x stays under x.
    void zoom_at(double x, double factor);
    void wheel(double x, double notches);
    // Drags the content by dx pixels (right: earlier times come into view).
    void pan_by(double dx);
    bool follows() const { return follow_; }

    // Mouse: a press starts a pan, or with shift a measurement; move/release continue it.
    void press(double x, bool shift);
    void move(double x);
    void release(double x);
    bool dragging() const { return mode_ != Mode::None; }
    bool measuring() const { return mode_ == Mode::Measure; }
    // The measured interval (ordered), kept after the release until the next press.
    std::optional<std::pair<double, double>> measure() const;
    void clear_measure() { measure_.reset(); }

  private:
    enum class Mode { None, Pan, Measure };
    double start_ns_ = 0, ns_per_px_ = 1000, width_ = 1000;
    bool follow_ = true;
    Mode mode_ = Mode::None;
    double last_x_ = 0;
    std::optional<std::pair<double, double>> measure_;  // times at press and now, unordered
};

// "1.234 ms", "56.7 us", "890 ns": durations as the timeline labels them.
const char* format_duration(double ns, char* buf, int size);

}  // namespace moeui
