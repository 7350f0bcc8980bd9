// The engine's narrow API (api/engine.h, api/chat_session.h) over the built-in demo model:
// turns stream text and land in the store, regenerate and edit make branches, the KV cache is
// reused across turns, cancel stops mid-answer and keeps what was said, errors come back as
// text.
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
