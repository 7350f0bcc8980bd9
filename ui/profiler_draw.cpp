#include "profiler_draw.h"

#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "timeline_model.h"
#include "timeline_view.h"

namespace moeui {

namespace {

using moe::profiler::Span;
using moe::profiler::Stage;

constexpr float kHeaderWidth = 150.0f;  // lane names
constexpr float kRulerHeight = 20.0f;
constexpr float kStatsHeight = 190.0f;

// One colour per stage, so that the same stage reads the same on every lane.
ImU32 stage_color(Stage s) {
    switch (s) {
        case Stage::Step:
            return IM_COL32(90, 90, 100, 255);
        case Stage::Layer:
            return IM_COL32(70, 80, 110, 255);
        case Stage::Attention:
            return IM_COL32(66, 135, 245, 255);
        case Stage::Router:
            return IM_COL32(245, 166, 35, 255);
        case Stage::Experts:
            return IM_COL32(80, 190, 110, 255);
        case Stage::SharedExperts:
            return IM_COL32(40, 150, 130, 255);
        case Stage::CpuExperts:
            return IM_COL32(120, 200, 80, 255);
        case Stage::GpuExperts:
            return IM_COL32(170, 110, 230, 255);
        case Stage::CopyToHost:
            return IM_COL32(230, 90, 90, 255);
        case Stage::CopyBack:
            return IM_COL32(230, 120, 160, 255);
        case Stage::GpuWait:
            return IM_COL32(150, 150, 150, 255);
        case Stage::Head:
            return IM_COL32(200, 200, 90, 255);
        case Stage::Worker:
            return IM_COL32(60, 160, 200, 255);
        default:
            return IM_COL32(120, 120, 120, 255);
    }
}

// A ruler step of 1, 2 or 5 times a power of ten nanoseconds, at least `min_px` apart.
double ruler_step(double ns_per_px, double min_px) {
    const double want = ns_per_px * min_px;
    const double p = std::pow(10.0, std::floor(std::log10(std::max(want, 1e-3))));
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (p * m >= want) return p * m;
    return p * 10;
}

void handle_input(TimelineModel& m, TimelineView& v, ImVec2 origin, bool hovered) {
    ImGuiIO& io = ImGui::GetIO();
    const double x = io.MousePos.x - origin.x;
    if (hovered && ImGui::IsMouseClicked(0)) v.press(x, io.KeyShift);
    if (v.dragging()) {
        if (ImGui::IsMouseDown(0)) {
            v.move(x);
        } else {
            v.release(x);
        }
    }
    if (hovered && io.MouseWheel != 0.0f) v.wheel(x, io.MouseWheel);
    for (ImWchar c : io.InputQueueCharacters) {
        if (c == 'f' || c == 'F') v.fit(m.begin_ns(), m.end_ns());
        if (c == '+' || c == '=') v.zoom_at(v.width() / 2, 2.0);
        if (c == '-') v.zoom_at(v.width() / 2, 0.5);
    }
    if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_LeftArrow))) v.pan_by(v.width() / 10);
    if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_RightArrow))) v.pan_by(-v.width() / 10);
}

void draw_ruler(ImDrawList* dl, const TimelineModel& m, const TimelineView& v, ImVec2 o,
                float bottom) {
    char buf[32];
    const double step = ruler_step(v.ns_per_px(), 90);
    const ImU32 grid = IM_COL32(255, 255, 255, 25), text = IM_COL32(200, 200, 200, 255);
    for (double t = std::ceil(v.start_ns() / step) * step; t < v.end_ns(); t += step) {
        const float x = o.x + float(v.x_of(t));
        dl->AddLine(ImVec2(x, o.y), ImVec2(x, bottom), grid);
        dl->AddText(ImVec2(x + 3, o.y + 2), text, format_duration(t, buf, sizeof buf));
    }
    // Token boundaries: where each forward call (a decode step or a prefill) began. Labels
    // only where they do not run into the previous one.
    float last_label = -1e9f;
    for (const auto& tk : m.tokens()) {
        const float x = o.x + float(v.x_of(double(tk.t_ns)));
        if (x < o.x || x > o.x + float(v.width())) continue;
        dl->AddLine(ImVec2(x, o.y), ImVec2(x, bottom), IM_COL32(255, 220, 120, 90));
        if (tk.token >= 0 && x - last_label >= 44.0f) {
            last_label = x;
            std::snprintf(buf, sizeof buf, "t%lld", (long long)tk.token);
            dl->AddText(ImVec2(x + 2, o.y + kRulerHeight - 14), IM_COL32(255, 220, 120, 255), buf);
        }
    }
}

void draw_tooltip(const TimelineModel& m, const Span& s) {
    char b0[32], b1[32];
    const auto* lane = m.capture().lane(s.lane);
    ImGui::BeginTooltip();
    ImGui::Text("%s", s.name.c_str());
    ImGui::Separator();
    ImGui::Text("stage     %s", moe::profiler::stage_name(s.stage));
    ImGui::Text("lane      %s", lane ? lane->name.c_str() : "?");
    if (s.layer >= 0) ImGui::Text("layer     %d", s.layer);
    if (s.token >= 0) ImGui::Text("token     %lld", (long long)s.token);
    ImGui::Text("begins at %s", format_duration(double(s.begin_ns), b0, sizeof b0));
    ImGui::Text("duration  %s", format_duration(double(s.duration_ns()), b1, sizeof b1));
    ImGui::EndTooltip();
}

void draw_timeline(TimelineModel& m, TimelineView& v, ImVec2 size) {
    ImGui::BeginChild("timeline", size, true, ImGuiWindowFlags_NoScrollWithMouse);
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const ImVec2 top = ImGui::GetCursorScreenPos();
    const float avail_w = ImGui::GetContentRegionAvail().x;
    v.set_width(std::max(1.0f, avail_w - kHeaderWidth));
    const ImVec2 o(top.x + kHeaderWidth, top.y);  // the time area's top left
    const float lanes_y = o.y + kRulerHeight;
    const float height = kRulerHeight + m.content_height();
    ImGui::InvisibleButton("lanes", ImVec2(std::max(1.0f, avail_w), std::max(1.0f, height)));
    const bool hovered = ImGui::IsItemHovered();
    handle_input(m, v, o, hovered && ImGui::GetIO().MousePos.x >= o.x);

    const ImVec2 clip0 = ImGui::GetWindowPos(), clip1(clip0.x + size.x, clip0.y + size.y);
    draw_ruler(dl, m, v, o, std::min(clip1.y, lanes_y + m.content_height()));
    const int64_t t0 = int64_t(std::floor(v.start_ns())), t1 = int64_t(std::ceil(v.end_ns()));
    const ImU32 text = IM_COL32(10, 10, 10, 255);
    for (size_t r = 0; r < m.rows().size(); ++r) {
        const auto& row = m.rows()[r];
        const float y = lanes_y + row.top;
        if (y > clip1.y || y + row.height < clip0.y) continue;
        dl->AddText(ImVec2(top.x + 4, y + 2), IM_COL32(220, 220, 220, 255), row.name.c_str());
        dl->AddLine(ImVec2(top.x, y + row.height - 2),
                    ImVec2(o.x + float(v.width()), y + row.height - 2),
                    IM_COL32(255, 255, 255, 20));
        dl->PushClipRect(ImVec2(o.x, clip0.y), clip1, true);
        for (int d = 0; d < row.depths; ++d) {
            for (size_t i : m.visible(int(r), d, t0, t1)) {
                const Span& s = m.capture().spans[i];
                const float x0 = o.x + float(v.x_of(double(s.begin_ns)));
                const float x1 = std::max(x0 + 1.0f, o.x + float(v.x_of(double(s.end_ns))));
                const float sy = lanes_y + m.span_top(i);
                dl->AddRectFilled(ImVec2(x0, sy + 1),
                                  ImVec2(x1, sy + TimelineModel::kRowHeight - 1),
                                  stage_color(s.stage));
                if (x1 - x0 > 30) {
                    const ImVec4 clip(std::max(x0, o.x) + 2, sy, x1 - 2,
                                      sy + TimelineModel::kRowHeight);
                    dl->AddText(nullptr, 0.0f, ImVec2(std::max(x0, o.x) + 3, sy + 2), text,
                                s.name.c_str(), nullptr, 0.0f, &clip);
                }
            }
        }
        dl->PopClipRect();
    }

    const ImGuiIO& io = ImGui::GetIO();
    if (hovered && !v.dragging() && io.MousePos.x >= o.x) {
        const double t = v.t_of(io.MousePos.x - o.x);
        const auto hit =
            m.hit_test(int64_t(t), io.MousePos.y - lanes_y, int64_t(3 * v.ns_per_px()));
        if (hit) {
            const Span& s = m.capture().spans[*hit];
            const float sy = lanes_y + m.span_top(*hit);
            dl->AddRect(
                ImVec2(o.x + float(v.x_of(double(s.begin_ns))), sy),
                ImVec2(o.x + float(v.x_of(double(s.end_ns))) + 1, sy + TimelineModel::kRowHeight),
                IM_COL32(255, 255, 255, 255));
            draw_tooltip(m, s);
        }
    }
    if (const auto mm = v.measure()) {
        const float x0 = o.x + float(v.x_of(mm->first)), x1 = o.x + float(v.x_of(mm->second));
        dl->AddRectFilled(ImVec2(x0, o.y), ImVec2(x1, clip1.y), IM_COL32(255, 255, 255, 40));
        char buf[32];
        format_duration(mm->second - mm->first, buf, sizeof buf);
        dl->AddText(ImVec2(x1 + 4, o.y + kRulerHeight + 2), IM_COL32(255, 255, 255, 255), buf);
    }
    ImGui::EndChild();
}

void draw_stats(const std::vector<moe::profiler::StageStats>& stats) {
    const ImGuiTableFlags flags = ImGuiTableFlags_Borders | ImGuiTableFlags_RowBg |
                                  ImGuiTableFlags_ScrollY | ImGuiTableFlags_SizingStretchProp;
    if (!ImGui::BeginTable("stats", 5, flags, ImVec2(0, kStatsHeight - 8))) return;
    ImGui::TableSetupScrollFreeze(0, 1);
    for (const char* c : {"stage", "count", "total", "mean", "p95"}) ImGui::TableSetupColumn(c);
    ImGui::TableHeadersRow();
    char buf[32];
    for (const auto& s : stats) {
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        ImGui::ColorButton("##c", ImGui::ColorConvertU32ToFloat4(stage_color(s.stage)),
                           ImGuiColorEditFlags_NoTooltip, ImVec2(10, 10));
        ImGui::SameLine();
        ImGui::TextUnformatted(moe::profiler::stage_name(s.stage));
        ImGui::TableNextColumn();
        ImGui::Text("%lld", (long long)s.count);
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(format_duration(double(s.total_ns), buf, sizeof buf));
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(format_duration(s.mean_ns, buf, sizeof buf));
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(format_duration(double(s.p95_ns), buf, sizeof buf));
    }
    ImGui::EndTable();
}

}  // namespace

void draw_profiler(ProfilerFrame& f) {
    const ImGuiIO& io = ImGui::GetIO();
    ImGui::SetNextWindowPos(ImVec2(0, 0));
    ImGui::SetNextWindowSize(io.DisplaySize);
    const ImGuiWindowFlags flags = ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoMove |
                                   ImGuiWindowFlags_NoSavedSettings |
                                   ImGuiWindowFlags_NoBringToFrontOnFocus;
    ImGui::Begin("profiler", nullptr, flags);
    ImGui::TextUnformatted(f.status.c_str());
    ImGui::SameLine();
    ImGui::TextDisabled("  wheel: zoom   drag: pan   shift-drag: measure   F: fit   +/-, arrows");
    const ImVec2 avail = ImGui::GetContentRegionAvail();
    draw_timeline(*f.model, *f.view, ImVec2(avail.x, std::max(80.0f, avail.y - kStatsHeight)));
    if (f.stats) draw_stats(*f.stats);
    ImGui::End();
}

}  // namespace moeui
