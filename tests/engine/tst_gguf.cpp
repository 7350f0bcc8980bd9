// GGUF reader and writer (formats/gguf.h): llama.cpp's own files (stories260K in F32, Q8_0,
// Q4_0, and a LoRA adapter, from ../shared/fixtures), write -> read round trips of every
// metadata type, byte-identical re-quantization of llama.cpp's Q8_0/Q4_0 tensors, and
// malformed files that must fail with errors naming the file, the tensor or key, and what
// was expected.
#include <QObject>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "cpu/quants.h"
#include "formats/gguf.h"

using moe::GgmlType;
using moe::GgufFile;
using moe::GgufType;
using moe::GgufValue;
using moe::GgufWriter;

namespace {

QString shared_dir() {
    const QByteArray v = qgetenv("MOE_SHARED_FIXTURES");
    return (v.isEmpty() ? QStringLiteral(MOE_SHARED_FIXTURES_DIR) : QString::fromLocal8Bit(v)) +
           "/stories260K";
}

#define REQUIRE_SHARED()                                                                     \
    do {                                                                                     \
        if (!QFileInfo::exists(shared_dir() + "/stories260K.gguf"))                          \
            QSKIP(qPrintable("../shared/fixtures/stories260K not found at " + shared_dir() + \
                             " (set MOE_SHARED_FIXTURES)"));                                 \
    } while (0)

std::string fixture(const char* name) {
    return (shared_dir() + "/" + name).toStdString();
}

std::vector<uint8_t> read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_all(const std::string& path, const std::vector<uint8_t>& b) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

// Expects open(path) to throw a moe::Error whose message contains every one of `parts`.
void expect_error(const std::string& path, const std::vector<QString>& parts) {
    try {
        GgufFile::open(path);
    } catch (const moe::Error& e) {
        const QString m = QString::fromUtf8(e.what());
        for (const QString& p : parts)
            QVERIFY2(m.contains(p), qPrintable(m + "  [missing: " + p + "]"));
        return;
    }
    QFAIL(qPrintable("no error for " + QString::fromStdString(path)));
}

// A hand-built GGUF header, field by field, so tests can break any one field.
struct Builder {
    std::vector<uint8_t> b;
    template <typename T>
    void put(T v) {
        const auto* p = reinterpret_cast<const uint8_t*>(&v);
        b.insert(b.end(), p, p + sizeof(T));
    }
    void str(const std::string& s) {
        put<uint64_t>(s.size());
        b.insert(b.end(), s.begin(), s.end());
    }
    void pad(size_t a) {
        while (b.size() % a) b.push_back(0);
    }
};

struct TensorSpec {
    std::string name = "w";
    std::vector<uint64_t> ne = {32, 2};
    uint32_t type = uint32_t(GgmlType::Q8_0);
    uint64_t offset = 0;
};

// magic/version/kv, then tensors, padded to 32, then `data_bytes` of data.
std::vector<uint8_t> build(const std::vector<TensorSpec>& tensors, size_t data_bytes,
                           uint32_t version = 3, const char* magic = "GGUF",
                           const std::function<void(Builder&)>& kv = nullptr, uint64_t n_kv = 0) {
    Builder h;
    for (int i = 0; i < 4; ++i) h.b.push_back(uint8_t(magic[i]));
    h.put<uint32_t>(version);
    h.put<uint64_t>(tensors.size());
    h.put<uint64_t>(n_kv);
    if (kv) kv(h);
    for (const auto& t : tensors) {
        h.str(t.name);
        h.put<uint32_t>(uint32_t(t.ne.size()));
        for (uint64_t d : t.ne) h.put<uint64_t>(d);
        h.put<uint32_t>(t.type);
        h.put<uint64_t>(t.offset);
    }
    h.pad(32);
    h.b.resize(h.b.size() + data_bytes, 0x11);
    return h.b;
}

}  // namespace

class TestGguf : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    std::string tmp(const char* name) { return (tmp_.path() + "/" + name).toStdString(); }

  private slots:
    void storiesF32() {
        REQUIRE_SHARED();
        auto g = GgufFile::open(fixture("stories260K.gguf"));
        QVERIFY(g->version() == 2 || g->version() == 3);
        QCOMPARE(g->alignment(), uint64_t(32));
        QCOMPARE(QString::fromStdString(g->require_string("general.architecture")),
                 QString("llama"));
        QCOMPARE(g->require_int("llama.embedding_length"), int64_t(64));
        QCOMPARE(g->require_int("llama.block_count"), int64_t(5));
        QCOMPARE(g->require_int("llama.attention.head_count"), int64_t(8));
        QCOMPARE(g->require_int("llama.attention.head_count_kv"), int64_t(4));
        QVERIFY(g->require_float("llama.attention.layer_norm_rms_epsilon") > 0);
        const auto tokens = g->require_string_array("tokenizer.ggml.tokens");
        QCOMPARE(tokens.size(), size_t(512));
        QCOMPARE(g->get_float_array("tokenizer.ggml.scores").size(), size_t(512));
        QCOMPARE(g->get_int("no.such.key", 7), int64_t(7));
        QVERIFY_THROWS_EXCEPTION(moe::Error, g->require_int("general.architecture"));
        try {
            g->require_int("llama.no_such_key");
            QFAIL("expected an error");
        } catch (const moe::Error& e) {
            QVERIFY2(QString(e.what()).contains("llama.no_such_key") &&
                         QString(e.what()).contains("stories260K.gguf"),
                     e.what());
        }
        const auto& emb = g->tensor("token_embd.weight");
        QCOMPARE(emb.type, GgmlType::F32);
        QCOMPARE(emb.ne, (std::vector<int64_t>{64, 512}));
        QCOMPARE(emb.shape(), (std::vector<int64_t>{512, 64}));
        QCOMPARE(emb.nbytes, size_t(64 * 512 * 4));
        QVERIFY(g->find_tensor("blk.4.ffn_down.weight") != nullptr);
        QVERIFY_THROWS_EXCEPTION(moe::Error, g->tensor("blk.5.ffn_down.weight"));
        for (const auto& t : g->tensors()) {
            QCOMPARE(t.type, GgmlType::F32);
            QVERIFY(t.data >= g->mapping()->data() + g->data_offset());
            QVERIFY(t.data + t.nbytes <= g->mapping()->data() + g->mapping()->size());
        }
        qInfo("stories260K.gguf: v%u, %zu keys, %zu tensors", g->version(), g->metadata().size(),
              g->tensors().size());
    }

    // llama.cpp's Q8_0/Q4_0 files: every quantized tensor dequantizes close to the F32 model,
    // and quantizing the F32 tensor with our reference quantizer gives llama.cpp's bytes.
    void storiesQuantized_data() {
        QTest::addColumn<QString>("file");
        QTest::addColumn<double>("bound");
        QTest::newRow("Q8_0") << "stories260K-Q8_0.gguf" << 0.01;
        QTest::newRow("Q4_0") << "stories260K-Q4_0.gguf" << 0.15;
    }
    void storiesQuantized() {
        REQUIRE_SHARED();
        QFETCH(QString, file);
        QFETCH(double, bound);
        auto f32 = GgufFile::open(fixture("stories260K.gguf"));
        auto g = GgufFile::open((shared_dir() + "/" + file).toStdString());
        QCOMPARE(QString::fromStdString(g->require_string("general.architecture")),
                 QString("llama"));
        int quantized = 0, identical = 0;
        QString types;
        for (const auto& t : g->tensors()) {
            types += QString::fromStdString(moe::ggml_type_name(t.type)) + " ";
            const auto& ref = f32->tensor(t.name);
            QCOMPARE(t.ne, ref.ne);
            if (t.type == GgmlType::F32) continue;
            ++quantized;
            const int64_t n = t.row_length();
            std::vector<float> row(static_cast<size_t>(n));
            std::vector<uint8_t> q(t.row_bytes());
            double err2 = 0, ref2 = 0;
            bool same = true;
            for (int64_t r = 0; r < t.rows(); ++r) {
                const auto* x = reinterpret_cast<const float*>(ref.data) + r * n;
                moe::dequantize_row(t.type, t.row(r), row.data(), n);
                for (int64_t i = 0; i < n; ++i) {
                    err2 += double(row[size_t(i)] - x[i]) * (row[size_t(i)] - x[i]);
                    ref2 += double(x[i]) * x[i];
                }
                moe::quantize_row(t.type, x, q.data(), n);
                same = same && std::memcmp(q.data(), t.row(r), q.size()) == 0;
            }
            const double rel = std::sqrt(err2 / ref2);
            QVERIFY2(rel <= bound, qPrintable(QString::fromStdString(t.describe()) + " rel " +
                                              QString::number(rel)));
            QVERIFY2(same, qPrintable("requantized bytes differ for " +
                                      QString::fromStdString(t.describe())));
            identical += same;
        }
        qInfo("%s: types %s; %d quantized tensors, %d byte-identical after re-quantization",
              qPrintable(file), qPrintable(types), quantized, identical);
        QVERIFY(quantized > 0);
    }

    void loraAdapter() {
        REQUIRE_SHARED();
        auto g = GgufFile::open(fixture("lora-r4.gguf"));
        QVERIFY(!g->tensors().empty());
        QCOMPARE(QString::fromStdString(g->get_string("general.type", "")), QString("adapter"));
        for (const auto& t : g->tensors()) QVERIFY(t.nbytes > 0);
    }

    // Re-writing llama.cpp's file with our writer reproduces it byte for byte (same layout
    // rules: metadata order, tensor order, alignment padding).
    void rewriteStoriesIdentically_data() {
        QTest::addColumn<QString>("file");
        QTest::newRow("F32") << "stories260K.gguf";
        QTest::newRow("Q4_0") << "stories260K-Q4_0.gguf";
        QTest::newRow("lora") << "lora-r4.gguf";
    }
    void rewriteStoriesIdentically() {
        REQUIRE_SHARED();
        QFETCH(QString, file);
        const std::string src = (shared_dir() + "/" + file).toStdString();
        auto g = GgufFile::open(src);
        GgufWriter w;
        for (const auto& [k, v] : g->metadata()) w.add(k, v);
        for (const auto& t : g->tensors()) w.add_tensor(t.name, t.type, t.ne, t.data, t.nbytes);
        const std::string out = tmp("rewrite.gguf");
        w.write(out);
        auto back = GgufFile::open(out);
        QCOMPARE(back->tensors().size(), g->tensors().size());
        QCOMPARE(back->metadata().size(), g->metadata().size());
        const auto a = read_all(src), b = read_all(out);
        if (g->version() == 3) {
            QCOMPARE(b.size(), a.size());
            QVERIFY(a == b);
        }
    }

    void roundTripAllTypes() {
        GgufWriter w;
        w.add("u8", GgufValue::u8(200));
        w.add("i8", GgufValue::i8(-100));
        w.add("u16", GgufValue::u16(60000));
        w.add("i16", GgufValue::i16(-30000));
        w.add_u32("u32", 4000000000u);
        w.add_i32("i32", -2000000000);
        w.add_u64("u64", 18000000000000000000ull);
        w.add("i64", GgufValue::i64(-9000000000000000000ll));
        w.add_f32("f32", 0.1f);
        w.add("f64", GgufValue::f64(0.1));
        w.add_bool("bool", true);
        w.add_string("str", std::string("h\xc3\xa9llo\0x", 8));
        w.add("arr.str", GgufValue::array(std::vector<std::string>{"a", "", "<s>"}));
        w.add("arr.i32", GgufValue::array(GgufType::INT32, std::vector<int64_t>{-1, 2, -3}));
        w.add("arr.u8", GgufValue::array(GgufType::UINT8, std::vector<int64_t>{0, 255}));
        w.add("arr.i64", GgufValue::array(GgufType::INT64, std::vector<int64_t>{INT64_MIN, 5}));
        w.add("arr.u64", GgufValue::array_unsigned(GgufType::UINT64, {UINT64_MAX}));
        w.add("arr.f32", GgufValue::array(GgufType::FLOAT32, std::vector<double>{1.5, -0.25}));
        w.add("arr.f64", GgufValue::array(GgufType::FLOAT64, std::vector<double>{1e300}));
        w.add("arr.bool", GgufValue::array_bool({true, false, true}));
        w.add("arr.empty", GgufValue::array(std::vector<std::string>{}));
        QVERIFY_THROWS_EXCEPTION(moe::Error, w.add("u8", GgufValue::u8(1)));

        std::vector<float> x(512 * 3);
        for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(float(i) * 0.37f);
        std::vector<uint8_t> q4k(moe::ggml_row_size(GgmlType::Q4_K, 512) * 3);
        for (int r = 0; r < 3; ++r)
            moe::quantize_row(GgmlType::Q4_K, x.data() + r * 512,
                              q4k.data() + r * moe::ggml_row_size(GgmlType::Q4_K, 512), 512);
        w.add_tensor("f32", GgmlType::F32, {512, 3}, x.data(), x.size() * 4);
        w.add_tensor("q4k", GgmlType::Q4_K, {512, 3}, q4k);
        w.add_tensor("odd", GgmlType::I8, {7}, std::vector<uint8_t>{1, 2, 3, 4, 5, 6, 7});
        w.add_tensor("empty", GgmlType::F32, {0, 4}, nullptr, 0);
        QVERIFY_THROWS_EXCEPTION(moe::Error, w.add_tensor("f32", GgmlType::F32, {1}, x.data(), 4));
        QVERIFY_THROWS_EXCEPTION(moe::Error,
                                 w.add_tensor("bad", GgmlType::Q4_K, {100}, x.data(), 4));
        QVERIFY_THROWS_EXCEPTION(moe::Error,
                                 w.add_tensor("short", GgmlType::F32, {4}, x.data(), 8));
        QVERIFY_THROWS_EXCEPTION(
            moe::Error, w.add_tensor(std::string(64, 'n'), GgmlType::F32, {1}, x.data(), 4));

        for (uint32_t alignment : {32u, 64u}) {
            GgufWriter wa = w;
            if (alignment != 32) wa.set_alignment(alignment);
            const std::string path = tmp("all.gguf");
            wa.write(path);
            QVERIFY(!QFileInfo::exists(QString::fromStdString(path + ".tmp")));
            auto g = GgufFile::open(path);
            QCOMPARE(g->version(), 3u);
            QCOMPARE(g->alignment(), uint64_t(alignment));
            QCOMPARE(g->require_int("u8"), int64_t(200));
            QCOMPARE(g->find("u8")->type, GgufType::UINT8);
            QCOMPARE(g->require_int("i8"), int64_t(-100));
            QCOMPARE(g->require_int("u16"), int64_t(60000));
            QCOMPARE(g->require_int("i16"), int64_t(-30000));
            QCOMPARE(g->require_int("u32"), int64_t(4000000000u));
            QCOMPARE(g->require_int("i32"), int64_t(-2000000000));
            QCOMPARE(g->find("u64")->u, uint64_t(18000000000000000000ull));
            QVERIFY_THROWS_EXCEPTION(moe::Error, g->require_int("u64"));  // exceeds int64
            QCOMPARE(g->require_int("i64"), int64_t(-9000000000000000000ll));
            QCOMPARE(g->require_float("f32"), double(0.1f));
            QCOMPARE(g->find("f32")->type, GgufType::FLOAT32);
            QCOMPARE(g->require_float("f64"), 0.1);
            QCOMPARE(g->require_bool("bool"), true);
            QCOMPARE(g->require_string("str"), std::string("h\xc3\xa9llo\0x", 8));
            QCOMPARE(g->require_string_array("arr.str"),
                     (std::vector<std::string>{"a", "", "<s>"}));
            QCOMPARE(g->require_int_array("arr.i32"), (std::vector<int64_t>{-1, 2, -3}));
            QCOMPARE(g->find("arr.i32")->type_string(), std::string("array[int32]"));
            QCOMPARE(g->require_int_array("arr.u8"), (std::vector<int64_t>{0, 255}));
            QCOMPARE(g->require_int_array("arr.i64"), (std::vector<int64_t>{INT64_MIN, 5}));
            QCOMPARE(g->find("arr.u64")->au, (std::vector<uint64_t>{UINT64_MAX}));
            QCOMPARE(g->require_float_array("arr.f32"), (std::vector<double>{1.5, -0.25}));
            QCOMPARE(g->require_float_array("arr.f64"), (std::vector<double>{1e300}));
            QCOMPARE(g->find("arr.bool")->au, (std::vector<uint64_t>{1, 0, 1}));
            QCOMPARE(g->find("arr.empty")->array_size(), size_t(0));
            QVERIFY_THROWS_EXCEPTION(moe::Error, g->require_string_array("arr.i32"));
            QVERIFY_THROWS_EXCEPTION(moe::Error, g->get_bool("u8", false));
            QCOMPARE(g->tensors().size(), size_t(4));
            QCOMPARE(g->tensors()[1].name, std::string("q4k"));
            const auto& f = g->tensor("f32");
            QCOMPARE(f.ne, (std::vector<int64_t>{512, 3}));
            QVERIFY(std::memcmp(f.data, x.data(), x.size() * 4) == 0);
            const auto& q = g->tensor("q4k");
            QCOMPARE(q.type, GgmlType::Q4_K);
            QVERIFY(std::memcmp(q.data, q4k.data(), q4k.size()) == 0);
            QCOMPARE(q.rows(), int64_t(3));
            QCOMPARE(g->tensor("odd").nbytes, size_t(7));
            QCOMPARE(g->tensor("empty").nbytes, size_t(0));
            for (const auto& t : g->tensors()) QCOMPARE(t.offset % alignment, uint64_t(0));
        }
    }

    void malformed() {
        const std::string p = tmp("bad.gguf");
        const TensorSpec ok;  // Q8_0 [32, 2]: 68 bytes
        write_all(p, build({ok}, 96));
        QCOMPARE(GgufFile::open(p)->tensor("w").nbytes, size_t(68));

        write_all(p, build({ok}, 96, 3, "GGUG"));
        expect_error(p, {"bad.gguf", "magic", "GGUF"});
        write_all(p, build({ok}, 96, 1));
        expect_error(p, {"bad.gguf", "version 1"});
        write_all(p, build({ok}, 96, 7));
        expect_error(p, {"bad.gguf", "version 7", "2 or 3"});
        write_all(p, build({ok}, 96, 0x03000000));
        expect_error(p, {"bad.gguf", "big-endian"});
        write_all(p, std::vector<uint8_t>{'G', 'G', 'U'});
        expect_error(p, {"bad.gguf", "truncated"});

        // Truncation anywhere: in the header or in the tensor data.
        const std::vector<uint8_t> full = build({ok}, 68);
        for (size_t cut : {size_t(10), size_t(30), size_t(50), full.size() - 68, full.size() - 1}) {
            write_all(p, std::vector<uint8_t>(full.begin(), full.begin() + long(cut)));
            expect_error(p, {"bad.gguf"});
        }
        write_all(p, std::vector<uint8_t>(full.begin(), full.end() - 1));
        expect_error(p, {"bad.gguf", "'w'", "outside the file"});

        TensorSpec t = ok;
        t.offset = 4096;
        write_all(p, build({t}, 96));
        expect_error(p, {"bad.gguf", "'w'", "outside the file"});
        t.offset = 16;
        write_all(p, build({t}, 96));
        expect_error(p, {"bad.gguf", "'w'", "not aligned", "multiple of 32"});
        t = ok;
        t.ne = {32, 1, 1, 1, 1};
        write_all(p, build({t}, 96));
        expect_error(p, {"bad.gguf", "'w'", "5 dimensions"});
        t.ne = {32, uint64_t(1) << 40, uint64_t(1) << 40};
        write_all(p, build({t}, 96));
        expect_error(p, {"bad.gguf", "'w'", "overflows"});
        t.ne = {uint64_t(1) << 63};
        write_all(p, build({t}, 96));
        expect_error(p, {"bad.gguf", "'w'"});
        t.ne = {32, uint64_t(1) << 40};  // fits int64, but not in the file
        write_all(p, build({t}, 96));
        expect_error(p, {"bad.gguf", "'w'", "outside the file"});
        t = ok;
        t.ne = {48, 2};
        write_all(p, build({t}, 128));
        expect_error(p, {"bad.gguf", "'w'", "Q8_0", "48", "multiple of the block size 32"});
        t = ok;
        t.type = 16;
        write_all(p, build({t}, 96));
        expect_error(p, {"bad.gguf", "'w'", "IQ2_XXS"});
        t.type = 1234;
        write_all(p, build({t}, 96));
        expect_error(p, {"bad.gguf", "'w'", "1234"});
        TensorSpec t2 = ok;
        t2.offset = 96;
        write_all(p, build({ok, t2}, 192));
        expect_error(p, {"bad.gguf", "duplicate tensor name 'w'"});
        t2.name = "v";
        t2.offset = 32;
        write_all(p, build({ok, t2}, 192));
        expect_error(p, {"bad.gguf", "overlaps"});

        // Metadata: duplicate keys, bad types, alignment, absurd counts.
        auto kv_dup = [](Builder& h) {
            for (int i = 0; i < 2; ++i) {
                h.str("k");
                h.put<uint32_t>(uint32_t(GgufType::UINT8));
                h.put<uint8_t>(1);
            }
        };
        write_all(p, build({ok}, 96, 3, "GGUF", kv_dup, 2));
        expect_error(p, {"bad.gguf", "duplicate metadata key 'k'"});
        auto kv_badtype = [](Builder& h) {
            h.str("k");
            h.put<uint32_t>(77);
        };
        write_all(p, build({ok}, 96, 3, "GGUF", kv_badtype, 1));
        expect_error(p, {"bad.gguf", "'k'", "77"});
        auto kv_align = [](Builder& h) {
            h.str("general.alignment");
            h.put<uint32_t>(uint32_t(GgufType::UINT32));
            h.put<uint32_t>(48);
        };
        write_all(p, build({ok}, 96, 3, "GGUF", kv_align, 1));
        expect_error(p, {"bad.gguf", "general.alignment", "power of two"});
        auto kv_align_type = [](Builder& h) {
            h.str("general.alignment");
            h.put<uint32_t>(uint32_t(GgufType::UINT64));
            h.put<uint64_t>(64);
        };
        write_all(p, build({ok}, 96, 3, "GGUF", kv_align_type, 1));
        expect_error(p, {"bad.gguf", "general.alignment", "uint32"});
        auto kv_huge_array = [](Builder& h) {
            h.str("tokens");
            h.put<uint32_t>(uint32_t(GgufType::ARRAY));
            h.put<uint32_t>(uint32_t(GgufType::STRING));
            h.put<uint64_t>(uint64_t(1) << 60);
        };
        write_all(p, build({ok}, 96, 3, "GGUF", kv_huge_array, 1));
        expect_error(p, {"bad.gguf", "'tokens'", "truncated"});
        auto kv_long_string = [](Builder& h) {
            h.str("name");
            h.put<uint32_t>(uint32_t(GgufType::STRING));
            h.put<uint64_t>(uint64_t(1) << 40);
        };
        write_all(p, build({ok}, 96, 3, "GGUF", kv_long_string, 1));
        expect_error(p, {"bad.gguf", "'name'", "truncated"});
        write_all(p, build({ok}, 96, 3, "GGUF", nullptr, uint64_t(1) << 50));
        expect_error(p, {"bad.gguf", "metadata entries"});
    }
};

QTEST_GUILESS_MAIN(TestGguf)
#include "tst_gguf.moc"
