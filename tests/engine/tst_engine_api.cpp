// The engine's narrow API (api/engine.h, api/chat_session.h) over the built-in demo model:
// turns stream text and land in the store, regenerate and edit make branches, the KV cache is
// reused across turns, cancel stops mid-answer and keeps what was said, errors come back as
// text. Predicted speed: calibration writes the machine rates beside the database (a new Engine
// reads them), leaves the expert telemetry alone and can be cancelled; predictions of a
// placement say why when they cannot be made.
#include <QFileInfo>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <future>
#include <nlohmann/json.hpp>

#include "api/engine.h"
#include "core/error.h"
#include "cuda/gpu.h"
#include "test_paths.h"

namespace {

struct Turn {
    std::optional<moe::ChatReply> reply;
    std::string error, streamed;
};

// Runs one engine call that ends in a ReplyDone and waits for it.
template <class Call>
Turn run_turn(Call call) {
    Turn t;
    std::promise<void> done;
    call([&t](const std::string& piece) { t.streamed += piece; },
         [&](const std::optional<moe::ChatReply>& r, const std::string& e) {
             t.reply = r;
             t.error = e;
             done.set_value();
         });
    done.get_future().wait();
    return t;
}

moe::ChatSettings greedy(int tokens) {
    moe::ChatSettings s;
    s.sampling.greedy = true;
    s.max_new_tokens = tokens;
    return s;
}

moe::Engine::ModelMap map_of(moe::Engine& engine) {
    std::promise<std::optional<moe::Engine::ModelMap>> m;
    engine.model_map([&](const auto& map) { m.set_value(map); });
    return *m.get_future().get();
}

struct Predicted {
    std::optional<moe::Engine::Prediction> p;
    std::string error;
};

Predicted predict(moe::Engine& engine, const moe::Placement& placement) {
    std::promise<Predicted> r;
    engine.predict_placement(placement, [&](const auto& p, const std::string& e) {
        r.set_value({p, e});
    });
    return r.get_future().get();
}

struct Calibrated {
    std::optional<moe::MachineRates> rates;
    std::string error;
    std::vector<std::string> steps;
};

Calibrated calibrate(moe::Engine& engine, bool cancel_at_first_step = false) {
    Calibrated c;
    std::promise<void> done;
    engine.calibrate(
        [&](const std::string& what) {
            c.steps.push_back(what);
            if (cancel_at_first_step) engine.cancel();
        },
        [&](const auto& r, const std::string& e) {
            c.rates = r;
            c.error = e;
            done.set_value();
        });
    done.get_future().wait();
    return c;
}

std::optional<moe::MachineRates> rates_of(moe::Engine& engine) {
    std::promise<std::optional<moe::MachineRates>> r;
    engine.machine_rates([&](const auto& rates) { r.set_value(rates); });
    return r.get_future().get();
}

bool load(moe::Engine& engine, const QString& model) {
    std::promise<bool> loaded;
    engine.load(model.toStdString(), {},
                [&](const auto& info, const std::string&) { loaded.set_value(info.has_value()); });
    return loaded.get_future().get();
}

}  // namespace

class TestEngineApi : public QObject {
    Q_OBJECT

    QTemporaryDir tmp_;
    QString model_;

  private slots:
    void initTestCase() {
        model_ = tmp_.filePath("demo");
        const QString why = moetest::make_demo_model(model_);
        if (why.contains("MOE_CLI")) QSKIP(qPrintable(why));
        QVERIFY2(why.isEmpty(), qPrintable(why));
    }

    void chatTurnsBranchesAndCancel() {
        moe::Engine engine(tmp_.filePath("chat.db").toStdString());
        // Before a model is loaded: a clear error, not a crash.
        Turn t = run_turn(
            [&](auto on_text, auto done) { engine.send(1, "hi", greedy(4), on_text, done); });
        QVERIFY(!t.reply && t.error == "no model is loaded");

        std::promise<std::string> loaded;
        engine.load(model_.toStdString(), {}, [&](const auto& info, const std::string& e) {
            loaded.set_value(info ? info->info.architecture : "error: " + e);
        });
        QCOMPARE(loaded.get_future().get(), std::string("qwen3_moe"));

        int64_t conv = 0;
        engine.with_store([&](moe::ConversationStore& s) {
            conv = s.create_conversation("Demo", R"({"system":"You are a demo."})");
        });
        engine.wait_idle();

        t = run_turn([&](auto on_text, auto done) {
            engine.send(conv, "Once upon a time", greedy(12), on_text, done);
        });
        QVERIFY2(t.reply.has_value(), t.error.c_str());
        QCOMPARE(t.streamed, t.reply->text);  // what streamed is what was stored
        const moe::ChatReply first = *t.reply;

        // The second turn re-runs only its new messages: the cache holds the first turn.
        moe::ChatReply second;
        t = run_turn([&](auto on_text, auto done) {
            engine.send(conv, "and then?", greedy(8), on_text, done);
        });
        QVERIFY2(t.reply.has_value(), t.error.c_str());
        second = *t.reply;
        QVERIFY(second.stats.prompt_tokens < first.stats.prompt_tokens + 20);
        std::vector<moe::StoredMessage> path;
        engine.with_store([&](moe::ConversationStore& s) { path = s.active_path(conv); });
        engine.wait_idle();
        QCOMPARE(path.size(), size_t(4));
        QCOMPARE(path[0].content, std::string("Once upon a time"));
        QCOMPARE(path[1].content, first.text);
        const auto meta = nlohmann::json::parse(path[3].meta);
        QVERIFY(meta["generated_tokens"].get<int>() >= 0);
        QVERIFY(meta["prompt_tokens_reused"].get<int>() > 0);

        // Regenerate the first answer (greedy: the same text, as a second branch).
        t = run_turn([&](auto on_text, auto done) {
            engine.regenerate(first.assistant_message, greedy(12), on_text, done);
        });
        QVERIFY2(t.reply.has_value(), t.error.c_str());
        QCOMPARE(t.reply->text, first.text);
        std::vector<int64_t> sib;
        engine.with_store(
            [&](moe::ConversationStore& s) { sib = s.siblings(first.assistant_message); });
        engine.wait_idle();
        QCOMPARE(sib.size(), size_t(2));

        // Edit the first question: a sibling user message with its own answer.
        t = run_turn([&](auto on_text, auto done) {
            engine.edit(first.user_message, "Long ago", greedy(6), on_text, done);
        });
        QVERIFY2(t.reply.has_value(), t.error.c_str());
        engine.with_store([&](moe::ConversationStore& s) {
            sib = s.siblings(first.user_message);
            path = s.active_path(conv);
        });
        engine.wait_idle();
        QCOMPARE(sib.size(), size_t(2));
        QCOMPARE(path.front().content, std::string("Long ago"));

        // Cancel mid-answer: generation stops, the text so far is stored as the answer.
        int pieces = 0;
        t = run_turn([&](auto on_text, auto done) {
            engine.send(
                conv, "Tell me everything", greedy(3000),
                [&, on_text](const std::string& p) {
                    on_text(p);
                    if (++pieces == 3) engine.cancel();
                },
                done);
        });
        QVERIFY2(t.reply.has_value(), t.error.c_str());
        if (t.reply->reason != moe::StopReason::Eos) {  // the demo may end on its own first
            QCOMPARE(int(t.reply->reason), int(moe::StopReason::Cancelled));
            QVERIFY(t.reply->stats.generated_tokens < 100);
        }
        std::string stored;
        engine.with_store([&](moe::ConversationStore& s) {
            stored = s.message(t.reply->assistant_message)->content;
        });
        engine.wait_idle();
        QCOMPARE(stored, t.reply->text);
    }

    void calibrateAndPredict() {
        QTemporaryDir dir;
        const std::string db = dir.filePath("app.db").toStdString();
        moe::Placement cpu_only, one_gpu_expert;
        {
            moe::Engine engine(db);
            QCOMPARE(engine.machine_rates_path(), dir.filePath("machine_rates.json").toStdString());
            QVERIFY(!rates_of(engine));
            // No model: calibration and prediction say so.
            QVERIFY(calibrate(engine).error == "no model is loaded");
            const Predicted none = predict(engine, moe::Placement{});
            QVERIFY2(!none.p && none.error == "no model is loaded", none.error.c_str());
            QVERIFY(load(engine, model_));
            const moe::Engine::ModelMap map = map_of(engine);
            cpu_only = map.placement;
            QVERIFY(!cpu_only.uses_gpu());
            one_gpu_expert = cpu_only;
            one_gpu_expert.layers[0].experts[0] = moe::Device::Gpu;
            Predicted p = predict(engine, cpu_only);
            // The reason, with the running model's measured speed (nothing answered yet).
            QVERIFY2(p.p && p.error.starts_with("calibrate this machine first"), p.error.c_str());
            QCOMPARE(p.p->speed.decode_tok_s, 0.0);
            QCOMPARE(p.p->measured.generated_tokens, int64_t(0));

            // Calibration: progress in words, CPU rates only (a CPU-only load), the file
            // written, and the telemetry as it was (nothing routed yet: still nothing).
            const Calibrated c = calibrate(engine);
            QVERIFY2(c.rates, c.error.c_str());
            QVERIFY(c.steps.size() >= 3);
            QVERIFY(c.rates->cpu_expert_bytes_per_s > 0 && c.rates->cpu_assignment_s > 0);
            QVERIFY(!c.rates->has_gpu());
            QVERIFY(QFileInfo::exists(dir.filePath("machine_rates.json")));
            QCOMPARE(map_of(engine).usage.total(), uint64_t(0));

            p = predict(engine, cpu_only);
            QVERIFY2(p.p, p.error.c_str());
            QVERIFY(p.p->speed.decode_tok_s > 0 && p.p->speed.prefill_tok_s > 0);
            QVERIFY(p.p->speed.ram_bytes > 0);
            QCOMPARE(p.p->speed.gpu_hit_rate, 0.0);
            QCOMPARE(p.p->measured.generated_tokens, int64_t(0));  // no chat turn yet
            p = predict(engine, one_gpu_expert);
            QVERIFY2(p.p && p.p->speed.decode_tok_s == 0 &&
                         p.error.find("no GPU figures") != std::string::npos,
                     p.error.c_str());
        }
        // A new Engine reads the rates back: a prediction without calibrating again, and the
        // measured speed of the running model after a chat turn.
        moe::MachineRates with_gpu;
        {
            moe::Engine engine(db);
            const auto rates = rates_of(engine);
            QVERIFY(rates && rates->cpu_expert_bytes_per_s > 0);
            with_gpu = *rates;
            QVERIFY(load(engine, model_));
            int64_t conv = 0;
            engine.with_store(
                [&](moe::ConversationStore& s) { conv = s.create_conversation("x"); });
            engine.wait_idle();
            const Turn t = run_turn([&](auto on_text, auto done) {
                engine.send(conv, "Once upon a time", greedy(8), on_text, done);
            });
            QVERIFY2(t.reply, t.error.c_str());
            const Predicted p = predict(engine, cpu_only);
            QVERIFY2(p.p, p.error.c_str());
            QVERIFY(p.p->speed.decode_tok_s > 0);
            if (t.reply->stats.generated_tokens > 1)
                QVERIFY(p.p->measured.generate_tokens_per_second() > 0);
            // The routed tokens are now the workload: no "equally likely" note.
            for (const std::string& n : p.p->speed.notes)
                QVERIFY2(n.find("no workload telemetry") == std::string::npos, n.c_str());
        }
        // Rates with GPU figures (as a GPU machine's calibration writes): a GPU placement is
        // predicted, and more GPU experts serve more of the expert use. Calibrating again and
        // cancelling at once keeps them.
        QTemporaryDir gpu_dir;
        with_gpu.gpu_layer_s = 1e-4;
        with_gpu.gpu_expert_bytes_per_s = 1e12;
        with_gpu.gpu_token_s = 1e-3;
        with_gpu.gpu_flops = 1e13;
        with_gpu.h2d_bytes_per_s = 2e10;
        with_gpu.save(gpu_dir.filePath("machine_rates.json").toStdString());
        moe::Engine engine(gpu_dir.filePath("app.db").toStdString());
        QVERIFY(load(engine, model_));
        moe::Placement gpu = one_gpu_expert;
        for (auto& l : gpu.layers) l.attention = l.dense = moe::Device::Gpu;
        gpu.embeddings = gpu.head = moe::Device::Gpu;
        const Predicted one = predict(engine, gpu);
        QVERIFY2(one.p, one.error.c_str());
        QVERIFY(one.p->speed.decode_tok_s > 0 && one.p->speed.vram_bytes > 0);
        for (auto& l : gpu.layers) std::fill(l.experts.begin(), l.experts.end(), moe::Device::Gpu);
        const Predicted all = predict(engine, gpu);
        QVERIFY2(all.p, all.error.c_str());
        QVERIFY(all.p->speed.gpu_hit_rate > one.p->speed.gpu_hit_rate);
        QVERIFY(all.p->speed.gpu_hit_rate > 0.999);  // every expert on the GPU
        const Calibrated c = calibrate(engine, true);
        QCOMPARE(c.error, std::string("calibration cancelled"));
        QCOMPARE(c.steps.size(), size_t(1));
        const auto kept = rates_of(engine);
        QVERIFY(kept && kept->has_gpu());
        QVERIFY(moe::MachineRates::load(gpu_dir.filePath("machine_rates.json").toStdString())
                    .has_gpu());
    }

    void conversationSettingsApply() {
        moe::ChatSettings base;
        base.max_new_tokens = 7;
        const moe::ChatSettings s = moe::merge_chat_settings(
            base, R"({"system":"x","temperature":0.25,"top_k":5,"max_tokens":99,"greedy":true})");
        QCOMPARE(s.sampling.temperature, 0.25f);
        QCOMPARE(s.sampling.top_k, 5);
        QCOMPARE(s.max_new_tokens, 99);
        QVERIFY(s.sampling.greedy);
        QCOMPARE(moe::merge_chat_settings(base, "not json").max_new_tokens, 7);
        QVERIFY_THROWS_EXCEPTION(moe::Error,
                                 moe::merge_chat_settings(base, R"({"temperature":"hot"})"));
    }

    void loadErrorsComeBackAsText() {
        moe::Engine engine(tmp_.filePath("err.db").toStdString());
        if (moe::list_gpus().empty()) {  // a GPU placement without a GPU says why
            std::promise<std::string> g;
            engine.load(
                model_.toStdString(), {}, {1.0, "auto"},
                [&](const auto& info, const std::string& e) { g.set_value(info ? "" : e); });
            const std::string why = g.get_future().get();
            QVERIFY2(QString::fromStdString(why).contains("GPU"), why.c_str());
        }
        std::promise<std::string> p;
        engine.load(tmp_.filePath("missing").toStdString(), {},
                    [&](const auto& info, const std::string& e) { p.set_value(info ? "" : e); });
        const std::string e = p.get_future().get();
        QVERIFY2(QString::fromStdString(e).contains("missing"), e.c_str());
    }
};

QTEST_APPLESS_MAIN(TestEngineApi)
#include "tst_engine_api.moc"
