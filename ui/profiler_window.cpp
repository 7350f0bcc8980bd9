#include "profiler_window.h"

#include <QFileDialog>
#include <QGuiApplication>
#include <QHBoxLayout>
#include <QLabel>
#include <QOffscreenSurface>
#include <QOpenGLContext>
#include <QSurfaceFormat>
#include <QTimer>
#include <QToolButton>
#include <QVBoxLayout>

#include "core/error.h"

#if defined(MOE_HAVE_IMGUI)
#include "imgui_widget.h"
#include "profiler_draw.h"
#endif

namespace moeui {

#if defined(MOE_HAVE_IMGUI)
namespace {

// ImGui's OpenGL3 renderer needs 3.2 or later (its GLSL 1.50 shaders).
QSurfaceFormat gl_format() {
    QSurfaceFormat f;
    f.setVersion(3, 2);
    f.setProfile(QSurfaceFormat::CoreProfile);
    return f;
}

}  // namespace
#endif

QString ProfilerWindow::timeline_unavailable_reason() {
#if !defined(MOE_HAVE_IMGUI)
    return tr(
        "This build has no Dear ImGui (install libimgui-dev and rebuild), so the "
        "profiler's timeline cannot be drawn.");
#else
    if (qEnvironmentVariableIsSet("MOE_PROFILER_NO_GL"))
        return tr("The profiler's timeline is switched off (MOE_PROFILER_NO_GL is set).");
    // Probe with a context of our own before creating the widget: a QOpenGLWidget on a
    // platform without OpenGL only stays blank, it cannot tell us why.
    QOpenGLContext ctx;
    ctx.setFormat(gl_format());
    QOffscreenSurface surface;
    surface.setFormat(gl_format());
    surface.create();
    if (!ctx.create() || !surface.isValid() || !ctx.makeCurrent(&surface))
        return tr("OpenGL is not available on this display (platform \"%1\"), so the profiler's "
                  "timeline cannot be drawn.")
            .arg(QGuiApplication::platformName());
    const QSurfaceFormat got = ctx.format();
    ctx.doneCurrent();
    if (got.majorVersion() < 3 || (got.majorVersion() == 3 && got.minorVersion() < 2))
        return tr("The profiler's timeline needs OpenGL 3.2; this display offers %1.%2.")
            .arg(got.majorVersion())
            .arg(got.minorVersion());
    return {};
#endif
}

ProfilerWindow::ProfilerWindow(QWidget* parent) : QWidget(parent, Qt::Window) {
    setObjectName("profilerWindow");
    setWindowTitle(tr("Profiler"));
    resize(1100, 650);
    auto* layout = new QVBoxLayout(this);
    auto* bar = new QHBoxLayout;
    auto button = [&](const QString& text, const char* name, const QString& tip) {
        auto* b = new QToolButton(this);
        b->setText(text);
        b->setObjectName(name);
        b->setToolTip(tip);
        bar->addWidget(b);
        return b;
    };
    live_button_ = button(tr("Live"), "liveButton",
                          tr("Capture the engine's timeline and show it as it runs"));
    live_button_->setCheckable(true);
    connect(live_button_, &QToolButton::toggled, this, &ProfilerWindow::setLive);
    connect(button(tr("Freeze"), "freezeButton", tr("Stop capturing and keep this capture")),
            &QToolButton::clicked, this, &ProfilerWindow::freeze);
    connect(button(tr("Fit"), "fitButton", tr("Show the whole capture (F)")), &QToolButton::clicked,
            this, &ProfilerWindow::fit);
    connect(button(tr("Export..."), "exportButton", tr("Save as Chrome trace JSON (Perfetto)")),
            &QToolButton::clicked, this, [this] {
                const QString path = QFileDialog::getSaveFileName(
                    this, tr("Export trace"), "trace.json", tr("Chrome trace (*.json)"));
                if (!path.isEmpty()) exportTo(path);
            });
    connect(button(tr("Import..."), "importButton", tr("Open a Chrome trace JSON file")),
            &QToolButton::clicked, this, [this] {
                const QString path = QFileDialog::getOpenFileName(
                    this, tr("Import trace"), {}, tr("Chrome trace (*.json);;All files (*)"));
                if (!path.isEmpty()) importFrom(path);
            });
    status_ = new QLabel(this);
    status_->setObjectName("profilerStatus");
    bar->addWidget(status_, 1);
    layout->addLayout(bar);

    const QString why = timeline_unavailable_reason();
    if (!why.isEmpty()) {
        show_message(why + "\n\n" +
                     tr("Captures can still be taken (Live, Freeze) and exported as Chrome "
                        "trace JSON to open in Perfetto."));
    } else {
#if defined(MOE_HAVE_IMGUI)
        gl_ = new ImGuiWidget(this);
        gl_->setObjectName("profilerTimeline");
        gl_->setFormat(gl_format());
        gl_->set_content([this] {
            ProfilerFrame f{&model_, &view_, &stats_, status_->text().toStdString()};
            draw_profiler(f);
        });
        connect(gl_, &ImGuiWidget::failed, this, [this](const QString& w) {
            gl_->hide();
            show_message(w);
        });
        layout->addWidget(gl_, 1);
#endif
    }
    timer_ = new QTimer(this);
    timer_->setInterval(250);
    connect(timer_, &QTimer::timeout, this, &ProfilerWindow::refresh);
    update_status();
}

ProfilerWindow::~ProfilerWindow() {
    // Tracing costs a little while on: a capture this window started ends with it.
    if (started_capture_) moe::profiler::stop_capture();
}

QString ProfilerWindow::message() const {
    return message_ ? message_->text() : QString();
}

void ProfilerWindow::show_message(const QString& text) {
    if (!message_) {
        message_ = new QLabel(this);
        message_->setObjectName("profilerMessage");
        message_->setWordWrap(true);
        message_->setAlignment(Qt::AlignCenter);
        static_cast<QVBoxLayout*>(layout())->addWidget(message_, 1);
    }
    message_->setText(text);
}

void ProfilerWindow::set_capture(moe::profiler::Capture capture) {
    model_.set_capture(std::move(capture));
    stats_ = moe::profiler::statistics(model_.capture());
    if (view_.follows()) view_.fit(model_.begin_ns(), model_.end_ns());
    update_status();
    redraw();
}

void ProfilerWindow::setLive(bool on) {
    if (live_ == on) return;
    live_ = on;
    live_button_->setChecked(on);
    if (on) {
        if (!moe::profiler::capturing()) {
            moe::profiler::start_capture();
            started_capture_ = true;
        }
        source_ = tr("live");
        view_.fit(0, 0);  // follow the capture until the user zooms or pans
        timer_->start();
        refresh();
    } else {
        timer_->stop();
        update_status();
    }
}

void ProfilerWindow::freeze() {
    const bool was_live = live_;
    setLive(false);
    if (moe::profiler::capturing()) {
        moe::profiler::stop_capture();
        started_capture_ = false;
    }
    if (was_live || source_ == tr("live")) {
        source_ = tr("frozen");
        set_capture(moe::profiler::snapshot());
    }
    update_status();
}

void ProfilerWindow::refresh() {
    set_capture(moe::profiler::snapshot());
}

void ProfilerWindow::fit() {
    view_.fit(model_.begin_ns(), model_.end_ns());
    redraw();
}

QString ProfilerWindow::exportTo(const QString& path) {
    try {
        moe::profiler::save_chrome_trace(model_.capture(), path.toStdString());
        status_->setText(
            tr("Exported %1 spans to %2").arg(model_.capture().spans.size()).arg(path));
        return {};
    } catch (const moe::Error& e) {
        status_->setText(QString::fromStdString(e.what()));
        return status_->text();
    }
}

QString ProfilerWindow::importFrom(const QString& path) {
    try {
        moe::profiler::Capture c = moe::profiler::load_chrome_trace(path.toStdString());
        setLive(false);
        source_ = path;
        view_.fit(0, 0);
        set_capture(std::move(c));
        return {};
    } catch (const moe::Error& e) {
        status_->setText(QString::fromStdString(e.what()));
        return status_->text();
    }
}

void ProfilerWindow::update_status() {
    const auto& c = model_.capture();
    QString text = source_.isEmpty() ? tr("No capture: press Live, then chat")
                                     : tr("%1: %2 spans on %3 lanes, %4 steps")
                                           .arg(source_)
                                           .arg(c.spans.size())
                                           .arg(c.lanes.size())
                                           .arg(model_.tokens().size());
    if (c.dropped > 0) text += tr(" (%1 older spans dropped)").arg(c.dropped);
    status_->setText(text);
}

void ProfilerWindow::redraw() {
#if defined(MOE_HAVE_IMGUI)
    if (gl_) gl_->update();
#endif
}

}  // namespace moeui
