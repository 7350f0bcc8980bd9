// Training data (train/dataset.h) with a real tokenizer and chat template (Qwen3's, from
// tests/data/tokenizers.tar.xz): every record format, the loss only on the assistant's tokens,
// cut-off, packing, the eval split, bad records reported with their file and line, and
// datasets whose fields are named otherwise read through a field map as the canonical ones.
#include <QFile>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include "core/error.h"
#include "model/model_tokenizer.h"
#include "test_paths.h"
#include "train/dataset.h"

using moe::train::DataFormat;

class TrainDataset : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    std::unique_ptr<moe::Tokenizer> tok_;
    std::unique_ptr<moe::ChatTemplate> tmpl_;

    QString write(const QString& name, const QByteArray& text) {
        QFile f(dir_.filePath(name));
        if (!f.open(QIODevice::WriteOnly)) return {};
        f.write(text);
        return f.fileName();
    }

    moe::train::Dataset load(const QString& path, moe::train::DatasetOptions o = {}) {
        return moe::train::load_dataset(path.toStdString(), *tok_, tmpl_.get(), o);
    }

    // The text of the tokens a record is trained on.
    std::string trained_text(const moe::train::Example& e) {
        std::vector<int32_t> ids;
        for (size_t i = 0; i < e.ids.size(); ++i)
            if (e.labels[i] != -100) ids.push_back(e.ids[i]);
        return tok_->decode(ids);
    }

    QString error_of(const QString& path) {
        try {
            load(path);
        } catch (const moe::Error& e) {
            return e.what();
        }
        return {};
    }

  private slots:
    void initTestCase() {
        QProcess tar;
        tar.start("tar", {"-xJf", moetest::data_dir() + "/tokenizers.tar.xz", "-C", dir_.path()});
        QVERIFY(tar.waitForFinished(120000) && tar.exitCode() == 0);
        const std::string qwen = dir_.filePath("qwen3").toStdString();
        tok_ = moe::load_model_tokenizer(qwen);
        tmpl_ = std::make_unique<moe::ChatTemplate>(moe::ChatTemplate::from_model_folder(qwen));
    }

    void messagesTrainOnTheAssistantOnly() {
        const QString p = write("chat.jsonl",
                                "{\"messages\":[{\"role\":\"system\",\"content\":\"Be kind.\"},"
                                "{\"role\":\"user\",\"content\":\"Hello robot\"},"
                                "{\"role\":\"assistant\",\"content\":\"Hi there, human!\"},"
                                "{\"role\":\"user\",\"content\":\"Bye\"},"
                                "{\"role\":\"assistant\",\"content\":\"See you.\"}]}"
                                "\n");
        const auto ds = load(p);
        QCOMPARE(ds.format, DataFormat::Messages);
        QCOMPARE(ds.train.size(), size_t(1));
        const auto& e = ds.train[0];
        QCOMPARE(e.ids.size(), e.labels.size());
        const std::string trained = trained_text(e);
        QVERIFY2(trained.find("Hi there, human!") != std::string::npos, trained.c_str());
        QVERIFY2(trained.find("See you.") != std::string::npos, trained.c_str());
        QVERIFY2(trained.find("Hello robot") == std::string::npos &&
                     trained.find("Be kind") == std::string::npos &&
                     trained.find("Bye") == std::string::npos,
                 trained.c_str());
        QVERIFY(QString::fromStdString(e.origin).endsWith("chat.jsonl:1"));
        // --train-on-prompt: every token.
        moe::train::DatasetOptions all;
        all.train_on_prompt = true;
        QCOMPARE(load(p, all).train[0].labels, e.ids);
    }

    // The assistant's tokens are found with every tokenizer family's chat template.
    void everyTemplateFamily() {
        const QString p = write("two.jsonl",
                                "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello robot\"},"
                                "{\"role\":\"assistant\",\"content\":\"Hi there, human!\"},"
                                "{\"role\":\"user\",\"content\":\"Bye\"},"
                                "{\"role\":\"assistant\",\"content\":\"See you.\"}]}\n");
        for (const char* family : {"qwen3", "llama3", "deepseek_v3"}) {  // llama2: no template
            const std::string d = dir_.filePath(family).toStdString();
            const auto tok = moe::load_model_tokenizer(d);
            moe::train::Dataset ds;
            try {
                const auto tmpl = moe::ChatTemplate::from_model_folder(d);
                ds = moe::train::load_dataset(p.toStdString(), *tok, &tmpl,
                                              moe::train::DatasetOptions{});
            } catch (const std::exception& e) {
                QFAIL(qPrintable(QString(family) + ": " + e.what()));
            }
            std::vector<int32_t> ids;
            const auto& e = ds.train.at(0);
            for (size_t i = 0; i < e.ids.size(); ++i)
                if (e.labels[i] != -100) ids.push_back(e.ids[i]);
            const std::string t = tok->decode(ids);
            QVERIFY2(t.find("Hi there, human!") != std::string::npos &&
                         t.find("See you.") != std::string::npos &&
                         t.find("Hello robot") == std::string::npos &&
                         t.find("Bye") == std::string::npos,
                     qPrintable(QString(family) + ": " + QString::fromStdString(t)));
        }
    }

    void alpacaShareGptAndText() {
        const QString alpaca = write("alpaca.json",
                                     "[{\"instruction\":\"Add\",\"input\":\"2 and 3\","
                                     "\"output\":\"5\"},{\"instruction\":\"Greet\","
                                     "\"output\":\"Hello!\"}]");
        const auto a = load(alpaca);
        QCOMPARE(a.format, DataFormat::Alpaca);
        QCOMPARE(a.train.size(), size_t(2));
        for (const auto& e : a.train) {
            const std::string t = trained_text(e);
            QVERIFY2(t.find("Add") == std::string::npos && t.find("Greet") == std::string::npos,
                     t.c_str());
        }
        const QString share = write("share.jsonl",
                                    "{\"conversations\":[{\"from\":\"human\",\"value\":\"Ping\"},"
                                    "{\"from\":\"gpt\",\"value\":\"Pong\"}]}"
                                    "\n");
        const auto s = load(share);
        QCOMPARE(s.format, DataFormat::ShareGPT);
        QVERIFY(trained_text(s.train[0]).find("Pong") != std::string::npos);
        const QString text =
            write("plain.txt", "First story line one.\nLine two.\n\n\nSecond story.\n");
        const auto t = load(text);
        QCOMPARE(t.format, DataFormat::Text);
        QCOMPARE(t.train.size(), size_t(2));
        QCOMPARE(t.records, int64_t(2));
    }

    // Renamed fields, mapped by hand, give exactly the canonical records' tokens and labels.
    void fieldMapReadsRenamedFields() {
        const auto same = [](const moe::train::Dataset& a, const moe::train::Dataset& b) {
            if (a.format != b.format || a.train.size() != b.train.size()) return false;
            for (size_t i = 0; i < a.train.size(); ++i)
                if (a.train[i].ids != b.train[i].ids || a.train[i].labels != b.train[i].labels)
                    return false;
            return true;
        };
        moe::train::DatasetOptions mapped;
        // Alpaca with question/context/answer: auto-detected through the map.
        const auto alpaca = load(write("canon-alpaca.jsonl",
                                       "{\"instruction\":\"Add\",\"input\":\"2 and 3\","
                                       "\"output\":\"5\"}\n"));
        const QString renamed = write("renamed-alpaca.jsonl",
                                      "{\"question\":\"Add\",\"context\":\"2 and 3\","
                                      "\"answer\":\"5\"}\n");
        QVERIFY2(error_of(renamed).contains("found \"question\", \"context\", \"answer\""),
                 qPrintable(error_of(renamed)));
        QVERIFY(error_of(renamed).contains("--field-map"));
        mapped.fields = moe::train::FieldMap::parse(
            "instruction=question, input=context,"
            "output=answer");
        QVERIFY(same(load(renamed, mapped), alpaca));
        // A mapped field that is missing names both names.
        mapped.fields = moe::train::FieldMap::parse("instruction=question,output=reply");
        try {
            load(renamed, mapped);
            QFAIL("loaded without its output");
        } catch (const moe::Error& e) {
            QVERIFY2(QString(e.what()).contains("missing \"reply\" (mapped from output)"),
                     e.what());
        }

        // ShareGPT whose turns say role/content and user/bot.
        const auto share = load(write("canon-share.jsonl",
                                      "{\"conversations\":[{\"from\":\"human\",\"value\":"
                                      "\"Ping\"},{\"from\":\"gpt\",\"value\":\"Pong\"}]}\n"));
        const QString share2 = write("renamed-share.jsonl",
                                     "{\"conversations\":[{\"role\":\"user\",\"content\":"
                                     "\"Ping\"},{\"role\":\"bot\",\"content\":\"Pong\"}]}\n");
        mapped.fields = moe::train::FieldMap::parse("from=role,value=content");
        try {
            load(share2, mapped);
            QFAIL("'bot' taken for a role");
        } catch (const moe::Error& e) {
            QVERIFY2(QString(e.what()).contains("assistant_tag=bot"), e.what());
        }
        mapped.fields = moe::train::FieldMap::parse("from=role,value=content,assistant_tag=bot");
        QVERIFY(same(load(share2, mapped), share));

        // OpenAI messages under another key, with other keys and role names.
        const auto msgs =
            load(write("canon-msgs.jsonl",
                       "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                       "{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\","
                       "\"content\":\"Hello\"}]}\n"));
        const QString msgs2 = write("renamed-msgs.jsonl",
                                    "{\"dialog\":[{\"speaker\":\"rules\",\"text\":\"Be "
                                    "brief.\"},{\"speaker\":\"customer\",\"text\":\"Hi\"},"
                                    "{\"speaker\":\"agent\",\"text\":\"Hello\"}]}\n");
        mapped.fields = moe::train::FieldMap::parse(
            "messages=dialog,role=speaker,content=text,system_tag=rules,user_tag=customer,"
            "assistant_tag=agent");
        QVERIFY(same(load(msgs2, mapped), msgs));
        const moe::train::DatasetKeys keys = moe::train::dataset_keys(msgs2.toStdString());
        QCOMPARE(keys.record, std::vector<std::string>{"dialog"});
        QCOMPARE(keys.turn, (std::vector<std::string>{"speaker", "text"}));

        // The map's own errors.
        QVERIFY_THROWS_EXCEPTION(moe::Error, moe::train::FieldMap::parse("instruction"));
        QVERIFY_THROWS_EXCEPTION(moe::Error, moe::train::FieldMap::parse("question=answer"));
        QVERIFY_THROWS_EXCEPTION(moe::Error, moe::train::FieldMap::parse("output="));
        QCOMPARE(moe::train::FieldMap::parse(" output = answer ,instruction=q").to_string(),
                 std::string("instruction=q,output=answer"));
    }

    void cutoffPackingAndEvalSplit() {
        QByteArray lines;
        for (int i = 0; i < 20; ++i)
            lines += "{\"text\":\"Record number " + QByteArray::number(i) +
                     " says something long enough to count.\"}"
                     "\n";
        const QString p = write("many.jsonl", lines);
        moe::train::DatasetOptions o;
        o.cutoff = 6;
        const auto cut = load(p, o);
        QCOMPARE(cut.truncated, int64_t(20));
        for (const auto& e : cut.train) QCOMPARE(e.ids.size(), size_t(6));
        o.packing = true;
        o.cutoff = 16;
        o.eval_fraction = 0.25;
        o.seed = 5;
        const auto packed = load(p, o);
        QCOMPARE(packed.eval.size(), size_t(5));
        QVERIFY(packed.train.size() >= 5);
        for (size_t i = 0; i + 1 < packed.train.size(); ++i)
            QCOMPARE(packed.train[i].ids.size(), size_t(16));
        // The same seed splits the same way.
        QCOMPARE(load(p, o).eval[0].ids, packed.eval[0].ids);
    }

    void badRecordsAreNamed() {
        const QString broken = write("broken.jsonl", "{\"text\":\"ok\"}\n{not json\n");
        QVERIFY2(error_of(broken).contains("broken.jsonl:2"), qPrintable(error_of(broken)));
        const QString missing = write("missing.jsonl",
                                      "{\"instruction\":\"x\"}"
                                      "\n");
        QVERIFY2(error_of(missing).contains("missing.jsonl:1: missing \"output\""),
                 qPrintable(error_of(missing)));
        const QString role = write("role.jsonl",
                                   "{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}"
                                   "\n");
        QVERIFY2(error_of(role).contains("role.jsonl:1") && error_of(role).contains("robot"),
                 qPrintable(error_of(role)));
        const QString unknown = write("unknown.jsonl",
                                      "{\"prompt\":\"x\"}"
                                      "\n");
        QVERIFY2(error_of(unknown).contains("cannot tell the format"),
                 qPrintable(error_of(unknown)));
        // A base model (no template) refuses conversations with a reason.
        moe::train::DatasetOptions o;
        bool refused = false;
        try {
            moe::train::load_dataset(
                write("c.jsonl",
                      "{\"messages\":[{\"role\":\"assistant\",\"content\":\"x\"}]}"
                      "\n")
                    .toStdString(),
                *tok_, nullptr, o);
        } catch (const moe::Error& e) {
            refused = QString(e.what()).contains("chat template");
        }
        QVERIFY(refused);
    }
};

QTEST_APPLESS_MAIN(TrainDataset)
#include "tst_train_dataset.moc"
