// "Chat with this adapter" on the engine side (api/adapter_chat.h, Engine::adapter_chat): on
// hf-tiny/qwen3_moe-s1 (generated tokenizer, ChatML template) with its PEFT LoRA fixture, the
// base side generates what the plain model generates and the adapter side what the model
// loaded with the adapter generates (greedy, token for token), the two differ, the streamed
// pieces add up to each answer, and a bad adapter comes back as an error naming it.
#include <QTemporaryDir>
#include <QtTest>
#include <mutex>

#include "api/engine.h"
#include "model/generator.h"
#include "model/model_tokenizer.h"
#include "test_paths.h"
#include "train_fixture.h"

class AdapterChatTest : public QObject {
    Q_OBJECT

    QTemporaryDir tmp_;
    std::string model_, adapter_;

    // The reference: `prompt` as one ChatML user turn, greedy, on a model loaded with `lo`.
    std::vector<int32_t> reference(const moe::LoadOptions& lo, const std::string& prompt, int n) {
        auto model = moe::load_model(model_, lo);
        const auto tok = moe::load_model_tokenizer(model_);
        moe::GenerateRequest req;
        req.prompt =
            tok->encode("<|im_start|>user\n" + prompt + "<|im_end|>\n<|im_start|>assistant\n");
        req.max_new_tokens = n;
        req.sampling.greedy = true;
        moe::KvCache cache = model->new_cache();
        return moe::generate(*model, cache, req).tokens;
    }

  private slots:
    void initTestCase() {
        model_ = moetest::make_trainable_model(moetest::data_dir().toStdString(),
                                               tmp_.filePath("model").toStdString());
        adapter_ = (moetest::data_dir() + "/hf-tiny/qwen3_moe-s1/lora").toStdString();
    }

    void bothSidesMatchTheirModels() {
        moe::ChatSettings s;
        s.sampling.greedy = true;
        s.max_new_tokens = 12;
        moe::Engine engine(tmp_.filePath("chat.db").toStdString());
        std::mutex mu;
        std::string streamed[2];
        std::optional<moe::Engine::AdapterAnswers> got;
        std::string error = "not called";
        engine.adapter_chat(
            model_, adapter_, "Hello there", s,
            [&](int side, const std::string& piece) {
                std::lock_guard g(mu);
                streamed[side] += piece;
            },
            [&](const std::optional<moe::Engine::AdapterAnswers>& a, const std::string& e) {
                got = a;
                error = e;
            });
        engine.wait_idle();
        QVERIFY2(error.empty(), error.c_str());
        QVERIFY(got.has_value());
        QCOMPARE(got->base.tokens, reference(moe::LoadOptions{}, "Hello there", 12));
        moe::LoadOptions with;
        with.lora_path = adapter_;
        QCOMPARE(got->adapted.tokens, reference(with, "Hello there", 12));
        QVERIFY(got->base.tokens != got->adapted.tokens);
        QCOMPARE(streamed[0], got->base.text);
        QCOMPARE(streamed[1], got->adapted.text);

        // The pair stays loaded: a second prompt answers the same way again.
        std::optional<moe::Engine::AdapterAnswers> again;
        engine.adapter_chat(model_, adapter_, "Hello there", s, {},
                            [&](const auto& a, const std::string&) { again = a; });
        engine.close_adapter_chat();
        engine.wait_idle();
        QVERIFY(again.has_value());
        QCOMPARE(again->adapted.tokens, got->adapted.tokens);
    }

    void badAdapterIsNamed() {
        moe::Engine engine(tmp_.filePath("chat2.db").toStdString());
        std::string error;
        bool answered = false;
        const std::string bad = tmp_.filePath("no-such-adapter").toStdString();
        engine.adapter_chat(model_, bad, "Hi", moe::ChatSettings{}, {},
                            [&](const auto& a, const std::string& e) {
                                answered = a.has_value();
                                error = e;
                            });
        engine.wait_idle();
        QVERIFY(!answered);
        QVERIFY2(error.find("no-such-adapter") != std::string::npos, error.c_str());
    }
};

QTEST_APPLESS_MAIN(AdapterChatTest)
#include "tst_adapter_chat.moc"
