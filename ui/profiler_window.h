#pragma once
// View > Profiler: the engine's trace (api/profiler.h) as a timeline drawn with Dear ImGui in
// an OpenGL widget (imgui_widget.h, profiler_draw.h), with Live (refresh from the running
// capture while chatting), Freeze (stop capturing, keep what was captured), Fit, Export and
// Import of Chrome trace JSON. Without Dear ImGui in the build or OpenGL on the platform (e.g.
// the offscreen platform of the tests) the window says so instead of drawing, and the
// capture, export and import still work.
#include <QString>
#include <QWidget>
#include <vector>

#include "api/profiler.h"
#include "timeline_model.h"
#include "timeline_view.h"

class QLabel;
class QTimer;
class QToolButton;

namespace moeui {

class ImGuiWidget;

class ProfilerWindow : public QWidget {
    Q_OBJECT

  public:
    explicit ProfilerWindow(QWidget* parent = nullptr);
    ~ProfilerWindow() override;

    // Why the timeline cannot be drawn here ("" when it can): no Dear ImGui in this build,
    // MOE_PROFILER_NO_GL set, or no OpenGL 3 context on this platform.
    static QString timeline_unavailable_reason();
    bool timeline_shown() const { return gl_ != nullptr; }
    QString message() const;  // the text shown instead of the timeline ("" when drawn)

    bool live() const { return live_; }
    TimelineModel& model() { return model_; }
    TimelineView& view() { return view_; }
    const std::vector<moe::profiler::StageStats>& statistics() const { return stats_; }
    void set_capture(moe::profiler::Capture capture);

  public slots:
    // On: starts the engine's capture (if none runs) and shows it, refreshed 4 times a second.
    void setLive(bool on);
    // Stops the engine's capture and keeps its last snapshot on screen.
    void freeze();
    void refresh();
    void fit();
    // Chrome trace JSON; return "" or why not (also shown in the status line).
    QString exportTo(const QString& path);
    QString importFrom(const QString& path);

  private:
    void show_message(const QString& text);
    void update_status();
    void redraw();

    TimelineModel model_;
    TimelineView view_;
    std::vector<moe::profiler::StageStats> stats_;
    ImGuiWidget* gl_ = nullptr;
    QLabel* message_ = nullptr;
    QLabel* status_ = nullptr;
    QToolButton* live_button_ = nullptr;
    QTimer* timer_ = nullptr;
    bool live_ = false;
    bool started_capture_ = false;  // this window started the engine's capture
    QString source_;                // "live", "frozen", or the imported file
};

}  // namespace moeui
