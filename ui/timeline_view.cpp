#include "timeline_view.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace moeui {

void TimelineView::fit(int64_t begin_ns, int64_t end_ns) {
    const double span = std::max<double>(1.0, double(end_ns - begin_ns));
    const double margin = span * 0.02;
    ns_per_px_ = std::clamp((span + 2 * margin) / width_, kMinNsPerPx, kMaxNsPerPx);
    start_ns_ = double(begin_ns) - margin;
    follow_ = true;
}

void TimelineView::zoom_at(double x, double factor) {
    if (!(factor > 0)) return;
    const double t = t_of(x);
    ns_per_px_ = std::clamp(ns_per_px_ / factor, kMinNsPerPx, kMaxNsPerPx);
    start_ns_ = t - x * ns_per_px_;
    follow_ = false;
}

void TimelineView::wheel(double x, double notches) {
    zoom_at(x, std::pow(kWheelStep, notches));
}

void TimelineView::pan_by(double dx) {
    start_ns_ -= dx * ns_per_px_;
    follow_ = false;
}

void TimelineView::press(double x, bool shift) {
    last_x_ = x;
    if (shift) {
        mode_ = Mode::Measure;
        measure_ = std::make_pair(t_of(x), t_of(x));
    } else {
        mode_ = Mode::Pan;
        measure_.reset();
    }
}

void TimelineView::move(double x) {
    if (mode_ == Mode::Pan) {
        pan_by(x - last_x_);
    } else if (mode_ == Mode::Measure) {
        measure_->second = t_of(x);
    }
    last_x_ = x;
}

void TimelineView::release(double x) {
    move(x);
    mode_ = Mode::None;
}

std::optional<std::pair<double, double>> TimelineView::measure() const {
    if (!measure_) return std::nullopt;
    return std::make_pair(std::min(measure_->first, measure_->second),
                          std::max(measure_->first, measure_->second));
}

const char* format_duration(double ns, char* buf, int size) {
    const double a = std::fabs(ns);
    if (a >= 1e9) {
        std::snprintf(buf, size_t(size), "%.3f s", ns / 1e9);
    } else if (a >= 1e6) {
        std::snprintf(buf, size_t(size), "%.3f ms", ns / 1e6);
    } else if (a >= 1e3) {
        std::snprintf(buf, size_t(size), "%.1f us", ns / 1e3);
    } else {
        std::snprintf(buf, size_t(size), "%.0f ns", ns);
    }
    return buf;
}

}  // namespace moeui
