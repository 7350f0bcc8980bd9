// Engine tracing (core/trace.h): nothing recorded or allocated while off; spans of a real
// CPU-path generation on the built-in demo model cover every layer's stages in order and do
// not overlap within a lane; per-stage statistics on a synthetic trace; Chrome trace JSON
// export and import round-trip; `moestudio-cli generate --trace`.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>
#include <map>
#include <set>
#include <thread>

#include "api/profiler.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/trace.h"
#include "core/trace_chrome.h"
#include "core/trace_stats.h"
#include "model/generator.h"
#include "model/model.h"
#include "test_paths.h"
#include "trace_spans.h"

using namespace moe;
using trace::Stage;

namespace {

using moetest::span;

// The spans of one lane and one stage, in time order.
std::vector<trace::Span> of(const trace::Capture& c, Stage stage) {
    std::vector<trace::Span> out;
    for (const auto& s : c.spans)
        if (s.stage == stage) out.push_back(s);
    return out;
}

}  // namespace

class TestTrace : public QObject {
    Q_OBJECT

  private slots:
    void cleanup() { trace::stop(); }

    // Off: a Scope neither records nor allocates a lane (structural: the counters the
    // recorder keeps), and instrumented code (a parallel loop) records nothing either.
    void offRecordsAndAllocatesNothing() {
        trace::stop();
        const int64_t lanes = trace::lanes_allocated();
        const int64_t before = trace::recorded();
        std::thread t([] {
            for (int i = 0; i < 1000; ++i) trace::Scope s(Stage::Router, "router", 0, 0);
        });
        t.join();
        parallel_for(1 << 12, 16, [](int64_t, int64_t) {});
        QCOMPARE(trace::lanes_allocated(), lanes);
        QCOMPARE(trace::recorded(), before);
        QVERIFY(!trace::enabled());

        // On: the same code records, a new thread gets its lane.
        trace::start();
        std::thread u([] {
            trace::set_thread_name("tester");
            for (int i = 0; i < 10; ++i) trace::Scope s(Stage::Router, "router", 3, 7);
        });
        u.join();
        trace::stop();
        QCOMPARE(trace::lanes_allocated(), lanes + 1);
        QCOMPARE(trace::recorded(), int64_t(10));
        const trace::Capture c = trace::snapshot();
        QCOMPARE(c.spans.size(), size_t(10));
        QCOMPARE(c.lanes.size(), size_t(1));
        QCOMPARE(c.lanes[0].name, std::string("tester"));
        for (const auto& s : c.spans) {
            QCOMPARE(s.layer, 3);
            QCOMPARE(s.token, int64_t(7));
            QVERIFY(s.begin_ns >= 0 && s.end_ns >= s.begin_ns);
        }
        // A new capture forgets the old one's spans.
        trace::start();
        trace::stop();
        QVERIFY(trace::snapshot().spans.empty());
    }

    // A full lane keeps its most recent spans (a ring) and counts the others as dropped.
    void ringKeepsTheRecentSpans() {
        trace::start(4);
        for (int i = 0; i < 10; ++i) trace::Scope s(Stage::Other, "x", i, 0);
        trace::stop();
        const trace::Capture c = trace::snapshot();
        QCOMPARE(c.spans.size(), size_t(4));
        QCOMPARE(c.dropped, int64_t(6));
        std::set<int32_t> layers;
        for (const auto& s : c.spans) layers.insert(s.layer);
        QCOMPARE(layers, (std::set<int32_t>{6, 7, 8, 9}));
    }

    void statisticsOnASyntheticTrace() {
        trace::Capture c;
        c.lanes = {{1, "main"}};
        // 20 router spans of 1..20 us, 2 expert spans of 100 and 300 us.
        for (int i = 1; i <= 20; ++i)
            c.spans.push_back(span(1, Stage::Router, i * 1000000, i * 1000000 + i * 1000));
        c.spans.push_back(span(1, Stage::Experts, 0, 100000));
        c.spans.push_back(span(1, Stage::Experts, 500000, 800000));
        const auto rows = trace::stage_statistics(c);
        QCOMPARE(rows.size(), size_t(2));
        QCOMPARE(rows[0].stage, Stage::Router);  // in Stage order
        QCOMPARE(rows[0].count, int64_t(20));
        QCOMPARE(rows[0].total_ns, int64_t(210000));
        QCOMPARE(rows[0].mean_ns, 10500.0);
        QCOMPARE(rows[0].p95_ns, int64_t(19000));  // nearest rank: the 19th of 20
        QCOMPARE(rows[0].max_ns, int64_t(20000));
        QCOMPARE(rows[1].stage, Stage::Experts);
        QCOMPARE(rows[1].count, int64_t(2));
        QCOMPARE(rows[1].total_ns, int64_t(400000));
        QCOMPARE(rows[1].p95_ns, int64_t(300000));
        // A window: only the spans that begin in it.
        const auto window = trace::stage_statistics(c, 1000000, 3000000);
        QCOMPARE(window.size(), size_t(1));
        QCOMPARE(window[0].count, int64_t(2));
        QCOMPARE(window[0].total_ns, int64_t(3000));
    }

    void chromeJsonRoundTrip() {
        trace::Capture c;
        c.lanes = {{1, "main"}, {2, "moe-worker-1"}, {7, "GPU stream"}};
        c.spans = {span(1, Stage::Step, 0, 5000123, -1, 12, "decode step"),
                   span(1, Stage::Layer, 10, 2000000, 0, 12, "layer"),
                   span(2, Stage::Worker, 333, 1999, 0, 12, "parallel_for share"),
                   span(7, Stage::GpuExperts, 1000, 1500, 1, 12, "moe: shared and GPU experts"),
                   span(1, Stage::Head, 4000000, 5000000, -1, 12, "head")};
        c.dropped = 3;
        c.sort();
        const std::string json = trace::to_chrome_json(c);
        // The format Perfetto reads: traceEvents, ph X, pid/tid, ts/dur in microseconds,
        // thread_name metadata.
        const QJsonObject doc = QJsonDocument::fromJson(QByteArray::fromStdString(json)).object();
        const QJsonArray events = doc["traceEvents"].toArray();
        int complete = 0, names = 0;
        for (const auto& v : events) {
            const QJsonObject e = v.toObject();
            if (e["ph"] == "X") {
                ++complete;
                QVERIFY(e.contains("pid") && e.contains("tid"));
                if (e["name"] == "decode step") {
                    QCOMPARE(e["ts"].toDouble(), 0.0);
                    QCOMPARE(e["dur"].toDouble(), 5000.123);
                }
            }
            if (e["ph"] == "M" && e["name"] == "thread_name") ++names;
        }
        QCOMPARE(complete, 5);
        QCOMPARE(names, 3);

        const trace::Capture back = trace::from_chrome_json(json);
        QCOMPARE(back.dropped, int64_t(3));
        QCOMPARE(back.lanes.size(), c.lanes.size());
        for (size_t i = 0; i < c.lanes.size(); ++i) {
            QCOMPARE(back.lanes[i].id, c.lanes[i].id);
            QCOMPARE(back.lanes[i].name, c.lanes[i].name);
        }
        QCOMPARE(back.spans.size(), c.spans.size());
        for (size_t i = 0; i < c.spans.size(); ++i) {
            const auto &a = c.spans[i], &b = back.spans[i];
            QCOMPARE(b.begin_ns, a.begin_ns);
            QCOMPARE(b.end_ns, a.end_ns);
            QCOMPARE(b.lane, a.lane);
            QCOMPARE(b.stage, a.stage);
            QCOMPARE(b.layer, a.layer);
            QCOMPARE(b.token, a.token);
            QCOMPARE(b.name, a.name);
        }
        // Foreign traces: B/E pairs and unknown categories; broken files say why.
        const auto foreign = trace::from_chrome_json(
            R"([{"ph":"B","name":"a","cat":"mystery","ts":1,"pid":1,"tid":5},
                {"ph":"E","ts":3,"pid":1,"tid":5}])");
        QCOMPARE(foreign.spans.size(), size_t(1));
        QCOMPARE(foreign.spans[0].stage, Stage::Other);
        QCOMPARE(foreign.spans[0].duration_ns(), int64_t(2000));
        QCOMPARE(foreign.lanes.size(), size_t(1));
        QVERIFY_THROWS_EXCEPTION(moe::Error, trace::from_chrome_json("{not json"));
        QVERIFY_THROWS_EXCEPTION(moe::Error, trace::from_chrome_json(R"({"events":[]})"));

        // The API's file functions.
        QTemporaryDir tmp;
        const std::string path = tmp.filePath("t.json").toStdString();
        profiler::save_chrome_trace(c, path);
        QCOMPARE(profiler::load_chrome_trace(path).spans.size(), c.spans.size());
        QVERIFY_THROWS_EXCEPTION(moe::Error, profiler::load_chrome_trace(path + ".missing"));
    }

    // A generation of the demo model on the CPU path: every forward call's layers in order,
    // each with attention, router and experts inside it, and within a lane spans nest or
    // follow each other (never partly overlap).
    void demoGenerationCoversEveryLayerAndStage() {
        QTemporaryDir tmp;
        const QString why = moetest::make_demo_model(tmp.filePath("demo"));
        if (!why.isEmpty()) QSKIP(qPrintable(why));
        auto model = load_model(tmp.filePath("demo").toStdString());
        const int64_t layers = model->info().layers;
        QVERIFY(layers > 1);
        KvCache cache = model->new_cache();
        GenerateRequest req;
        req.prompt = {1, 2, 3, 4, 5};
        req.max_new_tokens = 4;
        req.sampling.greedy = true;
        trace::set_thread_name("main");
        trace::start();
        const auto result = generate(*model, cache, req);
        trace::stop();
        const trace::Capture c = trace::snapshot();

        const auto steps = of(c, Stage::Step);
        // The prefill, then one decode step per token but the last (its K/V is never needed).
        QCOMPARE(int64_t(steps.size()), int64_t(result.tokens.size()));
        QCOMPARE(steps.front().token, int64_t(0));
        QCOMPARE(steps[1].token, int64_t(5));
        for (const auto& step : steps) {
            std::vector<trace::Span> inside;
            for (const auto& s : c.spans)
                if (s.lane == step.lane && s.begin_ns >= step.begin_ns && s.end_ns <= step.end_ns &&
                    s.token == step.token)
                    inside.push_back(s);
            // Layers 0..L-1 in order, each containing its stages.
            std::vector<trace::Span> layer_spans;
            for (const auto& s : inside)
                if (s.stage == Stage::Layer) layer_spans.push_back(s);
            QCOMPARE(int64_t(layer_spans.size()), layers);
            for (int64_t l = 0; l < layers; ++l) {
                const auto& L = layer_spans[size_t(l)];
                QCOMPARE(L.layer, int32_t(l));
                if (l > 0) QVERIFY(L.begin_ns >= layer_spans[size_t(l - 1)].end_ns);
                std::map<Stage, const trace::Span*> stages;
                for (const auto& s : inside)
                    if (s.layer == l && s.stage != Stage::Layer && s.stage != Stage::Worker &&
                        s.begin_ns >= L.begin_ns && s.end_ns <= L.end_ns)
                        stages[s.stage] = &s;
                QVERIFY2(stages.count(Stage::Attention) && stages.count(Stage::Router) &&
                             stages.count(Stage::Experts),
                         qPrintable(QString("layer %1 lacks a stage").arg(l)));
                QVERIFY(stages[Stage::Attention]->end_ns <= stages[Stage::Router]->begin_ns);
                QVERIFY(stages[Stage::Router]->end_ns <= stages[Stage::Experts]->begin_ns);
            }
            QCOMPARE(of(c, Stage::Head).size(), steps.size());
        }
        // Within a lane, two spans are nested or disjoint.
        std::map<int32_t, std::vector<trace::Span>> lanes;
        for (const auto& s : c.spans) lanes[s.lane].push_back(s);
        for (const auto& [lane, spans] : lanes) {
            for (size_t i = 0; i < spans.size(); ++i)
                for (size_t j = i + 1; j < spans.size() && spans[j].begin_ns < spans[i].end_ns; ++j)
                    QVERIFY2(spans[j].end_ns <= spans[i].end_ns,
                             qPrintable(QString("lane %1: %2 and %3 partly overlap")
                                            .arg(lane)
                                            .arg(QString::fromStdString(spans[i].name))
                                            .arg(QString::fromStdString(spans[j].name))));
        }
        QVERIFY(c.lane(steps.front().lane) != nullptr);
        QCOMPARE(c.lane(steps.front().lane)->name, std::string("main"));
        // Statistics of the capture: one row per stage seen, counts add up.
        for (const auto& row : trace::stage_statistics(c)) {
            QVERIFY(row.count > 0);
            if (row.stage == Stage::Layer) QCOMPARE(row.count, layers * int64_t(steps.size()));
        }
    }

    void cliWritesAChromeTrace() {
        const QByteArray cli = qgetenv("MOE_CLI");
        if (cli.isEmpty()) QSKIP("MOE_CLI is not set (the CLI is not built)");
        QTemporaryDir tmp;
        QVERIFY(moetest::make_demo_model(tmp.filePath("demo")).isEmpty());
        const QString file = tmp.filePath("trace.json");
        QProcess p;
        p.start(QString::fromLocal8Bit(cli),
                {"generate", tmp.filePath("demo"), "--prompt-ids", "1,2,3", "--max-new-tokens", "3",
                 "--greedy", "--ids", "--trace", file});
        QVERIFY(p.waitForFinished(120000));
        const QByteArray err = p.readAllStandardError();
        QVERIFY2(p.exitCode() == 0, err.constData());
        QVERIFY2(err.contains("[trace: "), err.constData());
        QFile f(file);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QJsonParseError parse;
        const QJsonDocument doc = QJsonDocument::fromJson(f.readAll(), &parse);
        QCOMPARE(parse.error, QJsonParseError::NoError);
        QSet<QString> cats;
        for (const auto& v : doc.object()["traceEvents"].toArray())
            cats.insert(v.toObject()["cat"].toString());
        for (const char* want : {"step", "layer", "attention", "router", "experts"})
            QVERIFY2(cats.contains(want), want);
        const auto back = profiler::load_chrome_trace(file.toStdString());
        QVERIFY(!back.spans.empty());
    }
};

QTEST_GUILESS_MAIN(TestTrace)
#include "tst_trace.moc"
