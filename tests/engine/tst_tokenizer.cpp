// Hugging Face tokenizer.json: every golden of tests/data/tokenizers.tar.xz (Qwen3, DeepSeek-V3,
// Llama 3, Llama 2/Mistral-style SentencePiece BPE) must encode to exactly the ids HF gives and
// decode back; streaming decoding must equal full decoding.
#include <QElapsedTimer>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace {

QString data_dir() {
    const QString env = qEnvironmentVariable("MOE_TEST_DATA");
    return env.isEmpty() ? QStringLiteral(MOE_TEST_DATA_DIR) : env;
}

QString ids_text(const std::vector<int32_t>& ids) {
    QStringList parts;
    for (int32_t id : ids) parts << QString::number(id);
    return "[" + parts.join(", ") + "]";
}

}  // namespace

class TestTokenizer : public QObject {
    Q_OBJECT

  private:
    QTemporaryDir dir_;
    nlohmann::json goldens_;
    std::map<std::string, std::unique_ptr<moe::Tokenizer>> loaded_;

    const moe::Tokenizer& tok(const std::string& name) {
        auto& t = loaded_[name];
        if (!t)
            t = moe::load_tokenizer(
                (dir_.path() + "/" + QString::fromStdString(name)).toStdString());
        return *t;
    }

    void golden_rows() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<int>("index");
        for (const auto& [name, entry] : goldens_["tokenizers"].items()) {
            for (size_t i = 0; i < entry["encode"].size(); ++i) {
                const QString row = QString::fromStdString(name) + "/" + QString::number(i);
                QTest::newRow(row.toUtf8().constData()) << QString::fromStdString(name) << int(i);
            }
        }
    }

  private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        const QString archive = data_dir() + "/tokenizers.tar.xz";
        QVERIFY2(QFile::exists(archive), qPrintable(archive + " is missing"));
        QProcess tar;
        tar.start("tar", {"-xJf", archive, "-C", dir_.path()});
        QVERIFY2(tar.waitForFinished(120000), "tar did not finish");
        QVERIFY2(tar.exitCode() == 0, tar.readAllStandardError().constData());
        std::ifstream in((dir_.path() + "/goldens.json").toStdString());
        QVERIFY(in.good());
        goldens_ = nlohmann::json::parse(in);
        QCOMPARE(goldens_["tokenizers"].size(), size_t(4));
    }

    void encodeMatchesGoldens_data() { golden_rows(); }
    void encodeMatchesGoldens() {
        QFETCH(QString, name);
        QFETCH(int, index);
        const auto& g = goldens_["tokenizers"][name.toStdString()]["encode"][size_t(index)];
        const auto expected = g["ids"].get<std::vector<int32_t>>();
        const auto ids = tok(name.toStdString()).encode(g["text"].get<std::string>());
        QVERIFY2(ids == expected,
                 qPrintable("text " + QString::fromStdString(g["text"].dump()) + "\n got      " +
                            ids_text(ids) + "\n expected " + ids_text(expected)));
    }

    void decodeMatchesGoldens_data() { golden_rows(); }
    void decodeMatchesGoldens() {
        QFETCH(QString, name);
        QFETCH(int, index);
        const auto& g = goldens_["tokenizers"][name.toStdString()]["encode"][size_t(index)];
        const std::string text =
            tok(name.toStdString()).decode(g["ids"].get<std::vector<int32_t>>());
        QCOMPARE(QString::fromStdString(text), QString::fromStdString(g["decoded"]));
    }

    // Token-by-token streaming gives the same text as one decode, and every chunk is valid
    // UTF-8 (never half a character).
    void streamingEqualsFullDecode_data() { golden_rows(); }
    void streamingEqualsFullDecode() {
        QFETCH(QString, name);
        QFETCH(int, index);
        const auto& t = tok(name.toStdString());
        const auto& g = goldens_["tokenizers"][name.toStdString()]["encode"][size_t(index)];
        moe::TokenStreamDecoder stream(t);
        std::string all;
        for (int32_t id : g["ids"].get<std::vector<int32_t>>()) {
            const std::string chunk = stream.push(id);
            QVERIFY2(moe::utf8::is_valid(chunk), "a streamed chunk is not valid UTF-8");
            all += chunk;
        }
        all += stream.flush();
        QCOMPARE(QString::fromStdString(all), QString::fromStdString(g["decoded"]));
    }

    void specialTokensInText() {
        const auto& qwen = tok("qwen3");
        const int32_t im_start = qwen.token_to_id("<|im_start|>");
        const int32_t im_end = qwen.token_to_id("<|im_end|>");
        QCOMPARE(im_start, 151644);
        QCOMPARE(im_end, 151645);
        const auto ids = qwen.encode("x<|im_end|><|im_start|>");
        QCOMPARE(ids.size(), size_t(3));
        QCOMPARE(ids[1], im_end);
        QCOMPARE(ids[2], im_start);
        QVERIFY(qwen.is_special(im_end));
        QVERIFY(!qwen.is_special(ids[0]));
        // A special token is never split, and skip_special_tokens drops it from the text.
        QCOMPARE(QString::fromStdString(qwen.decode(ids)), QString("x<|im_end|><|im_start|>"));
        QCOMPARE(QString::fromStdString(qwen.decode(ids, true)), QString("x"));

        // SentencePiece: text after a special token gets its own "▁" prefix, as HF does.
        const auto& llama2 = tok("llama2");
        const auto l = llama2.encode("<s>Hello</s>");
        QCOMPARE(l.front(), 1);
        QCOMPARE(l.back(), 2);
        QCOMPARE(std::vector<int32_t>(l.begin() + 1, l.end() - 1), llama2.encode("Hello"));

        // DeepSeek's full-width special tokens.
        const auto& ds = tok("deepseek_v3");
        const auto d = ds.encode("<｜begin▁of▁sentence｜>Hi");
        QCOMPARE(d.front(), 0);
        QCOMPARE(QString::fromStdString(ds.decode(d)), QString("<｜begin▁of▁sentence｜>Hi"));
    }

    void addSpecialTokens() {
        // Llama-style configs (add_bos_token) add BOS; Qwen adds nothing.
        QCOMPARE(tok("llama2").encode("Hello world", true), (std::vector<int32_t>{1, 22557, 1526}));
        QCOMPARE(tok("deepseek_v3").encode("Hello world", true),
                 (std::vector<int32_t>{0, 19923, 2058}));
        QCOMPARE(tok("qwen3").encode("Hello world", true), (std::vector<int32_t>{9707, 1879}));
        QCOMPARE(tok("llama2").encode("", true), (std::vector<int32_t>{1}));
    }

    void vocabularyAndSpecialIds() {
        const auto& qwen = tok("qwen3");
        QCOMPARE(qwen.vocab_size(), 151669);
        QCOMPARE(qwen.special_ids().eos, 151645);
        QCOMPARE(qwen.special_ids().pad, 151643);
        QCOMPARE(qwen.special_ids().bos, -1);
        QCOMPARE(QString::fromStdString(qwen.id_to_token(9707)), QString("Hello"));
        QCOMPARE(qwen.token_to_id("ĠHello"), 21927);
        QCOMPARE(qwen.token_to_id("no such token"), -1);

        const auto& llama2 = tok("llama2");
        QCOMPARE(llama2.vocab_size(), 32000);
        QCOMPARE(llama2.special_ids().bos, 1);
        QCOMPARE(llama2.special_ids().eos, 2);
        QCOMPARE(llama2.special_ids().unk, 0);
        QCOMPARE(QString::fromStdString(llama2.id_to_token(13)), QString("<0x0A>"));
        // token_bytes: the token's bytes in the middle of a text (space kept, bytes raw).
        QCOMPARE(QString::fromStdString(llama2.token_bytes(22557)), QString(" Hello"));
        QCOMPARE(llama2.token_bytes(13), std::string("\n"));
        QCOMPARE(llama2.token_bytes(1), std::string());

        const auto& llama3 = tok("llama3");
        QCOMPARE(llama3.special_ids().bos, 128000);
        QCOMPARE(llama3.special_ids().eos, 128001);
        QCOMPARE(QString::fromStdString(llama3.token_bytes(22691)), QString(" Hello"));
    }

    // A byte split over tokens: streaming holds it back until the character is complete.
    void streamingHoldsBrokenCharacters() {
        const auto& llama2 = tok("llama2");
        const auto ids = llama2.encode("🤖!");  // byte fallback: <0xF0> <0x9F> <0xA4> <0x96>
        moe::TokenStreamDecoder stream(llama2);
        std::vector<std::string> chunks;
        for (int32_t id : ids) chunks.push_back(stream.push(id));
        QVERIFY(chunks.size() >= 5);
        for (size_t i = 0; i + 2 < chunks.size(); ++i) QVERIFY(chunks[i].empty());
        std::string all;
        for (const auto& c : chunks) all += c;
        QCOMPARE(QString::fromStdString(all + stream.flush()), QString("🤖!"));

        // A truncated character at the end of generation becomes U+FFFD, never raw bytes.
        moe::TokenStreamDecoder cut(llama2);
        QCOMPARE(cut.push(ids[1]), std::string());
        QCOMPARE(cut.push(ids[2]), std::string());
        QCOMPARE(QString::fromStdString(cut.flush()), QString("\uFFFD"));
        QCOMPARE(QString::fromStdString(llama2.decode({ids[1], ids[2]})), QString("\uFFFD"));
    }

    // The built-in demo model's tokenizer (byte fallback, no merges) keeps working.
    void byteFallbackWithoutMerges() {
        QTemporaryDir demo;
        nlohmann::json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
        for (int b = 0; b < 256; ++b) {
            char piece[8];
            std::snprintf(piece, sizeof piece, "<0x%02X>", b);
            vocab[piece] = 3 + b;
        }
        const nlohmann::json j = {{"version", "1.0"},
                                  {"added_tokens",
                                   {{{"id", 0}, {"content", "<unk>"}, {"special", true}},
                                    {{"id", 1}, {"content", "<s>"}, {"special", true}},
                                    {{"id", 2}, {"content", "</s>"}, {"special", true}}}},
                                  {"normalizer", nullptr},
                                  {"pre_tokenizer", nullptr},
                                  {"decoder", {{"type", "ByteFallback"}}},
                                  {"model",
                                   {{"type", "BPE"},
                                    {"byte_fallback", true},
                                    {"unk_token", "<unk>"},
                                    {"vocab", vocab},
                                    {"merges", nlohmann::json::array()}}}};
        std::ofstream((demo.path() + "/tokenizer.json").toStdString()) << j.dump();
        const auto t = moe::load_tokenizer(demo.path().toStdString());
        const std::string text = "Hé!\n";
        std::vector<int32_t> expected;
        for (unsigned char c : text) expected.push_back(3 + c);
        QCOMPARE(t->encode(text), expected);
        QCOMPARE(t->decode(expected), text);
        QCOMPARE(t->token_bytes(3 + 'H'), std::string("H"));
        QCOMPARE(t->vocab_size(), 259);
    }

    void missingTokenizerNamesTheFile() {
        QTemporaryDir empty;
        try {
            moe::load_tokenizer(empty.path().toStdString());
            QFAIL("no error");
        } catch (const std::exception& e) {
            QVERIFY(QString(e.what()).contains("tokenizer.json"));
        }
    }

    // Found by fuzz_tokenizer: a component missing a key (a Prepend normalizer without
    // "prepend") threw nlohmann's out_of_range past the loader. Now a moe::Error naming the
    // file.
    void malformedComponentNamesTheFile() {
        QTemporaryDir d;
        std::ofstream(d.filePath("tokenizer.json").toStdString()) << R"({"version": "1.0",
            "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "pr%pend": "x"}]},
            "pre_tokenizer": null, "decoder": null,
            "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})";
        try {
            moe::load_tokenizer(d.path().toStdString());
            QFAIL("no error");
        } catch (const moe::Error& e) {
            QVERIFY2(QString(e.what()).contains("tokenizer.json"), e.what());
        }
    }

    // Found by fuzz_tokenizer under UBSan: an id written as a huge number (a JSON float) was
    // converted to an integer, undefined behaviour; ids far beyond the vocabulary allocated
    // gigabytes. Both are errors naming the file and the token.
    void absurdTokenIdsAreErrors() {
        for (const char* id : {"288888888888888888888", "2.5", "-1", "1000000000"}) {
            QTemporaryDir d;
            std::ofstream(d.filePath("tokenizer.json").toStdString())
                << R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": )" << id
                << R"(}, "merges": []}})";
            try {
                moe::load_tokenizer(d.path().toStdString());
                QFAIL(qPrintable(QString("no error for id ") + id));
            } catch (const moe::Error& e) {
                QVERIFY2(QString(e.what()).contains("tokenizer.json") &&
                             QString(e.what()).contains("'b'"),
                         e.what());
            }
        }
    }

    // Not a benchmark (no assertion on time): prints how long 1 MB takes, for the record.
    void encodeOneMegabyte() {
        std::string text;
        const auto& entries = goldens_["tokenizers"]["qwen3"]["encode"];
        while (text.size() < (1u << 20)) {
            for (const auto& e : entries) text += e["text"].get<std::string>() + "\n";
        }
        text.resize(1u << 20);
        while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80)
            text.pop_back();
        if (!text.empty() && static_cast<unsigned char>(text.back()) >= 0xC0) text.pop_back();
        // Also text with few repeated words (pseudo-random letters), where the word cache helps
        // little.
        std::string random;
        uint32_t state = 12345;
        while (random.size() < (1u << 20)) {
            state = state * 1664525u + 1013904223u;
            const int len = 1 + int((state >> 24) % 12);
            random += ' ';
            for (int i = 0; i < len; ++i) {
                state = state * 1664525u + 1013904223u;
                random += char('a' + (state >> 27) % 26);
            }
        }
        for (const char* name : {"qwen3", "llama3", "deepseek_v3", "llama2"}) {
            const auto& t = tok(name);
            for (const auto* input : {&text, &random}) {
                QElapsedTimer timer;
                timer.start();
                const auto ids = t.encode(*input);
                const qint64 ms = timer.elapsed();
                qInfo("%s: encoded %zu bytes (%s) into %zu tokens in %lld ms", name, input->size(),
                      input == &text ? "golden texts" : "random words", ids.size(), ms);
                QCOMPARE(t.decode(ids), *input);
            }
        }
    }
};

QTEST_GUILESS_MAIN(TestTokenizer)
#include "tst_tokenizer.moc"
