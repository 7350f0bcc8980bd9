#pragma once
// The profiler's Dear ImGui frame (built only with libimgui-dev): the timeline of a
// TimelineModel through a TimelineView, with the view's mouse and key handling fed from
// ImGui's IO, and the per-stage statistics table. Thin on purpose: layout, zoom, pan,
// hit-testing and statistics live in timeline_model.h / timeline_view.h.
#include <string>
#include <vector>

#include "api/profiler.h"

namespace moeui {

class TimelineModel;
class TimelineView;

struct ProfilerFrame {
    TimelineModel* model = nullptr;
    TimelineView* view = nullptr;
    const std::vector<moe::profiler::StageStats>* stats = nullptr;
    std::string status;  // first line: capture state, span count
};

// Draws one frame into the whole ImGui display (call between NewFrame and Render).
void draw_profiler(ProfilerFrame& f);

}  // namespace moeui
