// The profiler (View > Profiler): the timeline model's lane layout and hit-testing, the view's
// zoom/pan/measure math, Chrome trace export and import through the window, the message shown
// where OpenGL or Dear ImGui is missing (the offscreen platform of the tests), and Live mode
// picking up the engine's spans while the demo model answers a chat.
#include <QAction>
#include <QLabel>
#include <QMenuBar>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSettings>
#include <QTemporaryDir>
#include <QToolButton>
#include <QWheelEvent>
#include <QtTest>
#include <set>

#include "api/profiler.h"
#include "chat_view.h"
#include "main_window.h"
#include "profiler_window.h"
#include "test_paths.h"
#include "timeline_model.h"
#include "timeline_view.h"
#include "trace_spans.h"

using moe::profiler::Capture;
using moe::profiler::Span;
using moe::profiler::Stage;
using moeui::TimelineModel;
using moeui::TimelineView;

namespace {

using moetest::span;

// Two decode steps on lane 1 (step > layer > attention, router), a worker on lane 2.
Capture sample() {
    Capture c;
    c.lanes = {{1, "engine"}, {2, "moe-worker-1"}};
    for (int k = 0; k < 2; ++k) {
        const int64_t t = k * 10000;
        c.spans.push_back(span(1, Stage::Step, t, t + 9000, -1, 5 + k, "decode step"));
        c.spans.push_back(span(1, Stage::Layer, t + 100, t + 8000, 0, 5 + k, "layer"));
        c.spans.push_back(span(1, Stage::Attention, t + 200, t + 3000, 0, 5 + k, "attention"));
        c.spans.push_back(span(1, Stage::Router, t + 3000, t + 3500, 0, 5 + k, "router"));
        c.spans.push_back(span(2, Stage::Worker, t + 4000, t + 7000, 0, 5 + k, "share"));
    }
    return c;
}

size_t index_of(const TimelineModel& m, Stage stage, int64_t begin) {
    const auto& spans = m.capture().spans;
    for (size_t i = 0; i < spans.size(); ++i)
        if (spans[i].stage == stage && spans[i].begin_ns == begin) return i;
    return size_t(-1);
}

}  // namespace

class TestProfiler : public QObject {
    Q_OBJECT

  private slots:
    void initTestCase() {
        QCoreApplication::setOrganizationName("MoE Studio Tests");
        QCoreApplication::setApplicationName("tst_profiler");
    }

    void laneLayoutAndHitTesting() {
        TimelineModel m;
        m.set_capture(sample());
        QCOMPARE(m.rows().size(), size_t(2));
        QCOMPARE(m.rows()[0].name, std::string("engine"));
        QCOMPARE(m.rows()[0].depths, 3);  // step > layer > attention/router
        QCOMPARE(m.rows()[1].depths, 1);
        const float row = TimelineModel::kRowHeight;
        QCOMPARE(m.rows()[1].top, 3 * row + TimelineModel::kLaneGap);
        QCOMPARE(m.content_height(), 4 * row + 2 * TimelineModel::kLaneGap);
        QCOMPARE(m.begin_ns(), int64_t(0));
        QCOMPARE(m.end_ns(), int64_t(19000));
        // Token boundaries: the starts of the step spans.
        QCOMPARE(m.tokens().size(), size_t(2));
        QCOMPARE(m.tokens()[1].t_ns, int64_t(10000));
        QCOMPARE(m.tokens()[1].token, int64_t(6));

        const size_t attn = index_of(m, Stage::Attention, 10200);
        QCOMPARE(m.depth_of(attn), 2);
        QCOMPARE(m.span_top(attn), 2 * row);
        // Points inside bars find them; depth follows y.
        QCOMPARE(m.hit_test(10500, 2.5f * row).value(), attn);
        QCOMPARE(m.hit_test(10500, 1.5f * row).value(), index_of(m, Stage::Layer, 10100));
        QCOMPARE(m.hit_test(10500, 0.5f * row).value(), index_of(m, Stage::Step, 10000));
        QCOMPARE(m.hit_test(13200, 2.5f * row).value(), index_of(m, Stage::Router, 13000));
        QCOMPARE(m.hit_test(5000, m.rows()[1].top + 1).value(), index_of(m, Stage::Worker, 4000));
        // Gaps miss, unless within the slop; below the lanes nothing.
        QVERIFY(!m.hit_test(3700, 2.5f * row));
        QCOMPARE(m.hit_test(3700, 2.5f * row, 250).value(), index_of(m, Stage::Router, 3000));
        QVERIFY(!m.hit_test(9500, m.rows()[1].top + 1));
        QVERIFY(!m.hit_test(5000, m.content_height() + 5));
        // Culling: only the spans intersecting the window.
        QCOMPARE(m.visible(0, 2, 9000, 11000).size(), size_t(1));
        QCOMPARE(m.visible(0, 2, 0, 20000).size(), size_t(4));
        QVERIFY(m.visible(0, 2, 3600, 10100).empty());
        QVERIFY(m.visible(5, 0, 0, 20000).empty());
    }

    void zoomPanAndMeasure() {
        TimelineView v;
        v.set_width(1000);
        v.fit(0, 1000000);  // 1 ms with a 2 % margin each side
        QVERIFY(v.follows());
        QCOMPARE(v.ns_per_px(), 1040.0);
        QCOMPARE(v.start_ns(), -20000.0);
        QCOMPARE(v.x_of(0), 20000.0 / 1040.0);
        QCOMPARE(v.t_of(v.x_of(123456)), 123456.0);
        // Zoom about the pointer: the time under it stays put.
        const double under = v.t_of(300);
        v.wheel(300, 2);  // two notches in
        QVERIFY(!v.follows());
        QCOMPARE(v.ns_per_px(), 1040.0 / (1.25 * 1.25));
        QCOMPARE(v.t_of(300), under);
        v.zoom_at(700, 0.5);
        QCOMPARE(v.ns_per_px(), 1040.0 / (1.25 * 1.25) * 2);
        // Limits.
        v.zoom_at(0, 1e12);
        QCOMPARE(v.ns_per_px(), TimelineView::kMinNsPerPx);
        v.zoom_at(0, 1e-30);
        QCOMPARE(v.ns_per_px(), TimelineView::kMaxNsPerPx);
        // Dragging right by 100 px shows 100 px worth of earlier time.
        v.fit(0, 1000000);
        const double start = v.start_ns();
        v.press(500, false);
        QVERIFY(v.dragging() && !v.measuring());
        v.move(550);
        v.release(600);
        QVERIFY(!v.dragging());
        QCOMPARE(v.start_ns(), start - 100 * v.ns_per_px());
        // Shift-drag measures (either direction) and leaves the view where it was.
        const double before = v.start_ns();
        v.press(400, true);
        QVERIFY(v.measuring());
        v.move(200);
        v.release(100);
        QCOMPARE(v.start_ns(), before);
        QVERIFY(v.measure().has_value());
        QCOMPARE(v.measure()->first, v.t_of(100));
        QCOMPARE(v.measure()->second, v.t_of(400));
        QCOMPARE(v.measure()->second - v.measure()->first, 300 * v.ns_per_px());
        v.press(10, false);  // a plain press ends the measurement
        v.release(10);
        QVERIFY(!v.measure());
        char buf[32];
        QCOMPARE(QString(moeui::format_duration(1234567, buf, sizeof buf)), QString("1.235 ms"));
        QCOMPARE(QString(moeui::format_duration(56700, buf, sizeof buf)), QString("56.7 us"));
        QCOMPARE(QString(moeui::format_duration(890, buf, sizeof buf)), QString("890 ns"));
    }

    // Export writes Chrome trace JSON that imports back to the same spans and statistics.
    void exportImportRoundTrip() {
        QTemporaryDir tmp;
        const QString file = tmp.filePath("capture.json");
        moeui::ProfilerWindow a;
        a.set_capture(sample());
        QCOMPARE(a.statistics().size(), size_t(5));  // step, layer, attention, router, worker
        QCOMPARE(a.exportTo(file), QString());
        moeui::ProfilerWindow b;
        QCOMPARE(b.importFrom(file), QString());
        const auto &x = a.model().capture(), &y = b.model().capture();
        QCOMPARE(y.spans.size(), x.spans.size());
        for (size_t i = 0; i < x.spans.size(); ++i) {
            QCOMPARE(y.spans[i].begin_ns, x.spans[i].begin_ns);
            QCOMPARE(y.spans[i].end_ns, x.spans[i].end_ns);
            QCOMPARE(y.spans[i].lane, x.spans[i].lane);
            QCOMPARE(y.spans[i].stage, x.spans[i].stage);
            QCOMPARE(y.spans[i].layer, x.spans[i].layer);
            QCOMPARE(y.spans[i].token, x.spans[i].token);
            QCOMPARE(y.spans[i].name, x.spans[i].name);
        }
        QCOMPARE(b.model().rows().size(), size_t(2));
        QCOMPARE(b.model().rows()[1].name, std::string("moe-worker-1"));
        QCOMPARE(b.statistics().size(), a.statistics().size());
        QVERIFY(b.findChild<QLabel*>("profilerStatus")->text().contains("10 spans"));
        // A broken file: the reason, and the capture on screen is kept.
        QFile bad(tmp.filePath("bad.json"));
        QVERIFY(bad.open(QIODevice::WriteOnly));
        bad.write("{\"traceEvents\": [ oops");
        bad.close();
        const QString why = b.importFrom(bad.fileName());
        QVERIFY2(why.contains("bad.json") && why.contains("invalid JSON"), qPrintable(why));
        QCOMPARE(b.model().capture().spans.size(), x.spans.size());
    }

    // Without OpenGL (forced here; the offscreen platform may also lack it) the window says
    // why instead of drawing, and Live/Freeze still capture.
    void messageWithoutOpenGl() {
        qputenv("MOE_PROFILER_NO_GL", "1");
        {
            moeui::ProfilerWindow w;
            w.show();
            QVERIFY(!w.timeline_shown());
            auto* label = w.findChild<QLabel*>("profilerMessage");
            QVERIFY(label && label->isVisible());
            QVERIFY2(label->text().contains("MOE_PROFILER_NO_GL"), qPrintable(label->text()));
            QVERIFY(label->text().contains("exported"));
            QVERIFY(!moe::profiler::capturing());
            QTest::mouseClick(w.findChild<QToolButton*>("liveButton"), Qt::LeftButton);
            QVERIFY(w.live() && moe::profiler::capturing());
            { moe::trace::Scope s(Stage::Router, "router", 0, 0); }
            w.refresh();
            QCOMPARE(w.model().capture().spans.size(), size_t(1));
            QTest::mouseClick(w.findChild<QToolButton*>("freezeButton"), Qt::LeftButton);
            QVERIFY(!w.live() && !moe::profiler::capturing());
            { moe::trace::Scope s(Stage::Router, "router", 0, 0); }  // off: not recorded
            QCOMPARE(w.model().capture().spans.size(), size_t(1));
            QVERIFY(w.findChild<QLabel*>("profilerStatus")->text().startsWith("frozen"));
        }
        qunsetenv("MOE_PROFILER_NO_GL");
        // The platform's own answer: either the timeline widget or a message, never a crash.
        moeui::ProfilerWindow w;
        w.show();
        QTest::qWait(50);  // a first paint, where there is OpenGL
        const QString why = moeui::ProfilerWindow::timeline_unavailable_reason();
        QCOMPARE(w.timeline_shown(), why.isEmpty());
        if (!why.isEmpty()) QCOMPARE(w.message().left(why.size()), why);
        qInfo("timeline on this platform: %s", why.isEmpty() ? "drawn" : qPrintable(why));
        if (!why.isEmpty()) return;
        // With OpenGL (e.g. under Xvfb): Qt's wheel and drag reach the view through ImGui.
        auto* gl = w.findChild<QWidget*>("profilerTimeline");
        QVERIFY(gl);
        w.set_capture(sample());
        QTest::qWait(100);
        const double scale = w.view().ns_per_px();
        const QPointF at(gl->width() * 0.6, 70);  // over the first lane
        QWheelEvent wheel(at, gl->mapToGlobal(at), {}, QPoint(0, 240), Qt::NoButton, Qt::NoModifier,
                          Qt::NoScrollPhase, false);
        QCoreApplication::sendEvent(gl, &wheel);
        QTRY_VERIFY(w.view().ns_per_px() < scale);
        const double start = w.view().start_ns();
        QTest::mousePress(gl, Qt::LeftButton, {}, at.toPoint());
        QTest::qWait(50);
        QTest::mouseMove(gl, at.toPoint() + QPoint(80, 0));
        QTest::qWait(50);
        QTest::mouseRelease(gl, Qt::LeftButton, {}, at.toPoint() + QPoint(80, 0));
        QTRY_VERIFY(w.view().start_ns() < start);
    }

    // View > Profiler from the main window, Live while the demo model answers: spans of every
    // layer on the engine thread's lane.
    void liveWhileChatting() {
        QTemporaryDir tmp;
        QSettings::setPath(QSettings::NativeFormat, QSettings::UserScope, tmp.filePath("settings"));
        QSettings().setValue("preflight/shown", true);
        const QString demo = tmp.filePath("demo");
        const QString why = moetest::make_demo_model(demo);
        if (why.contains("MOE_CLI")) QSKIP(qPrintable(why));
        QVERIFY2(why.isEmpty(), qPrintable(why));
        moeui::MainWindowOptions o;
        o.store_path = tmp.filePath("conversations.db");
        o.demo_model = demo;
        moeui::MainWindow w(o);
        w.show();
        QTRY_VERIFY_WITH_TIMEOUT(w.findChild<QLabel*>("modelLabel")->text().contains("qwen3_moe"),
                                 60000);
        QAction* open = nullptr;
        for (QAction* menu : w.menuBar()->actions())
            if (menu->text() == "&View")
                for (QAction* a : menu->menu()->actions())
                    if (a->text() == "&Profiler...") open = a;
        QVERIFY(open);
        open->trigger();
        auto* p = w.findChild<moeui::ProfilerWindow*>("profilerWindow");
        QVERIFY(p && p->isVisible());
        QVERIFY(p->timeline_shown() || !p->message().isEmpty());
        p->setLive(true);

        w.findChild<QPlainTextEdit*>("promptInput")->setPlainText("Once upon a time");
        QTest::mouseClick(w.findChild<QPushButton*>("sendButton"), Qt::LeftButton);
        auto* chat = w.findChild<moeui::ChatView*>("chatView");
        QTRY_VERIFY_WITH_TIMEOUT(!w.host().busy() && chat->last_answer() != 0, 60000);
        // The timer refreshes on its own while live.
        QTRY_VERIFY_WITH_TIMEOUT(p->model().tokens().size() >= 2, 5000);
        std::set<int32_t> layers;
        bool engine_lane = false;
        for (const auto& r : p->model().rows()) engine_lane |= r.name == "engine";
        for (const auto& s : p->model().capture().spans)
            if (s.stage == Stage::Layer) layers.insert(s.layer);
        QVERIFY(engine_lane);
        QCOMPARE(layers, (std::set<int32_t>{0, 1, 2, 3}));  // the demo model's 4 layers
        p->freeze();
        QVERIFY(!moe::profiler::capturing());
        const size_t frozen = p->model().capture().spans.size();
        QTest::qWait(400);
        QCOMPARE(p->model().capture().spans.size(), frozen);  // frozen: no more refreshes
        w.close();
    }
};

QTEST_MAIN(TestProfiler)
#include "tst_profiler.moc"
