// Tokenizers from GGUF metadata with llama.cpp's semantics: small hand-made SentencePiece and
// byte-level BPE vocabularies whose results follow from llama.cpp's algorithms, and the
// 512-token vocabulary of stories260K (tests/data/tokenizers.tar.xz: stories260K_vocab.json,
// the tokenizer.ggml.* metadata of stories260K.gguf).
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/unicode.h"

namespace {

using Ids = std::vector<int32_t>;

// A SentencePiece vocabulary: <unk>, <s>, </s>, the 256 byte tokens, then scored pieces.
moe::GgufVocab small_spm() {
    moe::GgufVocab v;
    v.model = "llama";
    auto add = [&](const std::string& t, float score, moe::GgufTokenType type) {
        v.tokens.push_back(t);
        v.scores.push_back(score);
        v.token_type.push_back(int32_t(type));
    };
    add("<unk>", 0, moe::GgufTokenType::Unknown);
    add("<s>", 0, moe::GgufTokenType::Control);
    add("</s>", 0, moe::GgufTokenType::Control);
    for (int b = 0; b < 256; ++b) {
        char piece[8];
        std::snprintf(piece, sizeof piece, "<0x%02X>", b);
        add(piece, 0, moe::GgufTokenType::Byte);
    }
    // ids from 259 on
    add("▁", -1, moe::GgufTokenType::Normal);       // 259
    add("a", -2, moe::GgufTokenType::Normal);       // 260
    add("b", -2, moe::GgufTokenType::Normal);       // 261
    add("c", -2, moe::GgufTokenType::Normal);       // 262
    add("▁a", -1.0f, moe::GgufTokenType::Normal);   // 263
    add("bc", -0.5f, moe::GgufTokenType::Normal);   // 264
    add("ab", -2.0f, moe::GgufTokenType::Normal);   // 265
    add("▁ab", -0.1f, moe::GgufTokenType::Normal);  // 266
    return v;
}

// A byte-level BPE vocabulary: the 256 byte characters (ids = byte values), then merged
// tokens, then one control token.
moe::GgufVocab small_bpe(const std::string& pre) {
    moe::GgufVocab v;
    v.model = "gpt2";
    v.pre = pre;
    for (int b = 0; b < 256; ++b)
        v.tokens.push_back(moe::utf8::byte_to_char(static_cast<unsigned char>(b)));
    for (const char* t : {"ll", "llo", "He", "Hello", "Ġw", "or", "Ġwor", "ld", "Ġworld", "12",
                          "123", "45", "12345"})
        v.tokens.push_back(t);      // 256..268
    v.tokens.push_back("<|eot|>");  // 269
    v.token_type.assign(v.tokens.size(), int32_t(moe::GgufTokenType::Normal));
    v.token_type.back() = int32_t(moe::GgufTokenType::Control);
    v.merges = {"l l", "ll o",    "H e", "He llo", "Ġ w", "o r",   "Ġw or",
                "l d", "Ġwor ld", "1 2", "12 3",   "4 5", "123 45"};
    v.eos_id = 269;
    v.eot_id = 269;
    return v;
}

}  // namespace

class TestTokenizerGguf : public QObject {
    Q_OBJECT

  private slots:
    void spmMergesByScore() {
        const auto t = moe::tokenizer_from_gguf(small_spm());
        // "▁abc": bc (-0.5) beats ▁a (-1) and ab (-2); then ▁a; "▁abc" is no token.
        QCOMPARE(t->encode("abc"), (Ids{263, 264}));
        // "▁ab": ▁a (-1) beats ab (-2), then "▁ab" is a token.
        QCOMPARE(t->encode("ab"), (Ids{266}));
        // BOS from add_special; a leading space is added at the start and after a special.
        QCOMPARE(t->encode("ab", true), (Ids{1, 266}));
        QCOMPARE(t->encode("a<s>b"), (Ids{263, 1, 259, 261}));
        // Characters outside the vocabulary become their UTF-8 bytes.
        QCOMPARE(t->encode("é"), (Ids{259, 3 + 0xC3, 3 + 0xA9}));
        QCOMPARE(t->encode(""), Ids{});
        QCOMPARE(t->encode("", true), (Ids{1}));
    }

    void spmDecode() {
        const auto t = moe::tokenizer_from_gguf(small_spm());
        // llama_detokenize drops the prefix space of the first piece, but not after a BOS.
        QCOMPARE(QString::fromStdString(t->decode({263, 264})), QString("abc"));
        QCOMPARE(QString::fromStdString(t->decode({1, 263, 264}, true)), QString(" abc"));
        QCOMPARE(QString::fromStdString(t->decode({1, 263, 264})), QString("<s> abc"));
        QCOMPARE(QString::fromStdString(t->decode({259, 3 + 0xC3, 3 + 0xA9})), QString("é"));
        QCOMPARE(t->token_bytes(263), std::string(" a"));
        QCOMPARE(t->token_bytes(3 + 0xC3), std::string("\xC3"));
        QVERIFY(t->is_special(1));
        QVERIFY(!t->is_special(263));
        QCOMPARE(t->special_ids().bos, 1);
        QCOMPARE(t->special_ids().eos, 2);
        QCOMPARE(t->special_ids().unk, 0);
        QCOMPARE(t->vocab_size(), 267);
        QCOMPARE(t->token_to_id("▁ab"), 266);
    }

    void bpePreTokenizers() {
        // gpt2: " ?\p{N}+" keeps the number whole, so all merges apply.
        QCOMPARE(moe::tokenizer_from_gguf(small_bpe("gpt2"))->encode("12345"), (Ids{268}));
        // llama3: \p{N}{1,3} splits it into 123|45.
        QCOMPARE(moe::tokenizer_from_gguf(small_bpe("llama-bpe"))->encode("12345"),
                 (Ids{266, 267}));
        // qwen2: one digit per pre-token.
        QCOMPARE(moe::tokenizer_from_gguf(small_bpe("qwen2"))->encode("12345"),
                 (Ids{'1', '2', '3', '4', '5'}));
        for (const char* pre : {"gpt2", "llama-bpe", "qwen2", "deepseek-v3", "default"}) {
            const auto t = moe::tokenizer_from_gguf(small_bpe(pre));
            QCOMPARE(t->encode("Hello world"), (Ids{259, 264}));
            QCOMPARE(t->encode("Hello<|eot|>"), (Ids{259, 269}));
            QCOMPARE(QString::fromStdString(t->decode({259, 264, 269})),
                     QString("Hello world<|eot|>"));
            QCOMPARE(QString::fromStdString(t->decode({259, 264, 269}, true)),
                     QString("Hello world"));
            QCOMPARE(t->special_ids().eot, 269);
        }
        // llama3 vocabularies add BOS by default; others do not.
        auto v = small_bpe("llama-bpe");
        v.bos_id = 269;
        QCOMPARE(moe::tokenizer_from_gguf(v)->encode("Hello", true), (Ids{269, 259}));
        QCOMPARE(moe::tokenizer_from_gguf(small_bpe("qwen2"))->encode("Hello", true), (Ids{259}));
    }

    void errorsNameTheProblem() {
        auto v = small_bpe("no-such-pre");
        try {
            moe::tokenizer_from_gguf(v);
            QFAIL("no error");
        } catch (const moe::Error& e) {
            QVERIFY(QString(e.what()).contains("no-such-pre"));
        }
        v = small_spm();
        v.scores.pop_back();
        QVERIFY_THROWS_EXCEPTION(moe::Error, moe::tokenizer_from_gguf(v));
    }

    // stories260K's 512-token SentencePiece vocabulary, as llama.cpp tokenizes its prompt.
    void stories260K() {
        QString data = qEnvironmentVariable("MOE_TEST_DATA");
        if (data.isEmpty()) data = MOE_TEST_DATA_DIR;
        QTemporaryDir dir;
        QProcess tar;
        tar.start("tar", {"-xJf", data + "/tokenizers.tar.xz", "-C", dir.path(),
                          "./stories260K_vocab.json"});
        QVERIFY(tar.waitForFinished(120000));
        QVERIFY2(tar.exitCode() == 0, tar.readAllStandardError().constData());
        std::ifstream in((dir.path() + "/stories260K_vocab.json").toStdString());
        const auto j = nlohmann::json::parse(in);
        moe::GgufVocab v;
        v.model = j["model"];
        v.tokens = j["tokens"].get<std::vector<std::string>>();
        v.scores = j["scores"].get<std::vector<float>>();
        v.token_type = j["token_type"].get<std::vector<int32_t>>();
        v.bos_id = j["bos_token_id"].get<int32_t>();
        v.eos_id = j["eos_token_id"].get<int32_t>();
        v.unk_id = j["unknown_token_id"].get<int32_t>();
        const auto t = moe::tokenizer_from_gguf(v);
        QCOMPARE(t->encode("Once upon a time", true), (Ids{1, 403, 407, 261, 378}));
        QCOMPARE(t->encode("Lily's mom said", true), (Ids{1, 317, 439, 419, 357, 336}));
        QCOMPARE(t->encode("héllo wörld 你好"), (Ids{270, 485, 306, 414, 263, 198, 185, 420, 341,
                                                     410, 231, 192, 163, 232, 168, 192}));
        QCOMPARE(QString::fromStdString(t->decode(t->encode("héllo wörld 你好"))),
                 QString("héllo wörld 你好"));
        QCOMPARE(QString::fromStdString(t->decode({1, 403, 407, 261, 378}, true)),
                 QString(" Once upon a time"));
        // Streaming equals a full decode, byte runs included.
        moe::TokenStreamDecoder stream(*t);
        std::string all;
        for (int32_t id : t->encode("héllo wörld 你好", true)) all += stream.push(id);
        all += stream.flush();
        QCOMPARE(QString::fromStdString(all),
                 QString::fromStdString(t->decode(t->encode("héllo wörld 你好", true))));
    }
};

QTEST_GUILESS_MAIN(TestTokenizerGguf)
#include "tst_tokenizer_gguf.moc"
