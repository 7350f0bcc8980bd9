// ggml block formats (cpu/quants.h): dequantization bit-exact with gguf-py's numpy
// dequantizers on random valid blocks, quantizers byte-identical with gguf-py where it has
// them (Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/MXFP4/BF16), round-trip error bounds on fresh random data, and
// vec_dot against the dequantized dot. Reference file: tests/data/quants/, made by
// tools/make_quant_references.py.
#include <QObject>
#include <QTest>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "cpu/quants.h"
#include "formats/ggml_types.h"
#include "formats/safetensors.h"
#include "test_paths.h"

using moe::GgmlType;

namespace {

using moetest::data_dir;

std::shared_ptr<moe::SafetensorsFile> reference() {
    static auto f = moe::SafetensorsFile::open(
        (data_dir() + "/quants/gguf_py_reference.safetensors").toStdString());
    return f;
}

const moe::TensorView& ref_tensor(const std::string& name) {
    const auto& t = reference()->tensors();
    auto it = t.find(name);
    if (it == t.end()) throw moe::Error("reference tensor " + name + " missing");
    return it->second;
}

GgmlType type_of(const std::string& name) {
    GgmlType t{};
    if (!moe::parse_ggml_type(name, t)) throw moe::Error("unknown type " + name);
    return t;
}

// Every weight type with kernels, and rough round-trip bounds (relative RMS error on N(0,1)
// rows; measured values are about 2/3 of these).
struct TypeCase {
    const char* name;
    double max_rel_rms;
};
constexpr TypeCase kWeightTypes[] = {
    {"F32", 0.0},   {"F16", 1e-3},    {"BF16", 5e-3},   {"Q4_0", 0.12},
    {"Q4_1", 0.10}, {"Q5_0", 0.06},   {"Q5_1", 0.05},   {"Q8_0", 0.006},
    {"Q2_K", 0.45}, {"Q3_K", 0.25},   {"Q4_K", 0.11},   {"Q5_K", 0.055},
    {"Q6_K", 0.03}, {"IQ4_NL", 0.11}, {"IQ4_XS", 0.11}, {"MXFP4", 0.2},
};

std::vector<float> random_row(std::mt19937& rng, int64_t n) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n), 0.0f);
    for (float& v : x) v = nd(rng);
    return x;
}

// On all-zero blocks ggml's C quantizers and gguf-py's numpy ones pick differently signed
// zeros for the fp16 scale/min (C: `max / -8` with max = +0 gives -0; numpy divides the first
// element, which may be -0). Both dequantize to zeros; we follow the C code, which is what
// llama.cpp's quantizer writes. Accept exactly that difference: an fp16 scale field that is
// +0 in one and -0 in the other.
bool zero_scale_sign_only(GgmlType t, const uint8_t* got, const uint8_t* want, size_t b) {
    const size_t ts = moe::ggml_type_size(t);
    const size_t block = b / ts * ts, off = b % ts;
    const bool has_min = t == GgmlType::Q4_1 || t == GgmlType::Q5_1;
    if (t == GgmlType::MXFP4 || t == GgmlType::BF16) return false;
    const size_t field = off < 2 ? 0 : (has_min && off < 4 ? 2 : SIZE_MAX);
    if (field == SIZE_MAX) return false;
    auto h = [&](const uint8_t* p) {
        return uint16_t(p[block + field] | p[block + field + 1] << 8);
    };
    return (h(got) & 0x7fff) == 0 && (h(want) & 0x7fff) == 0;
}

// Q4_1/Q5_1 x Q8_1 applies each weight block's min m through the activation block's stored
// s = fp16(d * sum(q)), not through the exact sum of its values: the reference does the same,
// sum((w - m) * x_deq) + m * s per block.
double q8_1_reference(GgmlType t, const uint8_t* wq, const std::vector<float>& w, const uint8_t* xq,
                      const std::vector<float>& xd) {
    const size_t wts = moe::ggml_type_size(t), xts = moe::ggml_type_size(GgmlType::Q8_1);
    double ref = 0;
    for (size_t b = 0; b < w.size() / 32; ++b) {
        uint16_t mh, sh;
        std::memcpy(&mh, wq + b * wts + 2, 2);
        std::memcpy(&sh, xq + b * xts + 2, 2);
        const double m = moe::f16_to_f32(mh), s = moe::f16_to_f32(sh);
        for (size_t i = b * 32; i < b * 32 + 32; ++i) ref += (double(w[i]) - m) * xd[i];
        ref += m * s;
    }
    return ref;
}

uint32_t fresh_seed() {
    const uint32_t s = std::random_device{}();
    qInfo("random seed %u", s);
    return s;
}

}  // namespace

class TestQuants : public QObject {
    Q_OBJECT

  private slots:
    void typeTable() {
        QCOMPARE(uint32_t(GgmlType::Q4_K), 12u);
        QCOMPARE(uint32_t(GgmlType::MXFP4), 39u);
        QCOMPARE(uint32_t(GgmlType::BF16), 30u);
        QCOMPARE(moe::ggml_type_size(GgmlType::Q4_K), size_t(144));
        QCOMPARE(moe::ggml_type_size(GgmlType::Q6_K), size_t(210));
        QCOMPARE(moe::ggml_type_size(GgmlType::IQ4_XS), size_t(136));
        QCOMPARE(moe::ggml_block_size(GgmlType::Q8_0), int64_t(32));
        QCOMPARE(moe::ggml_row_size(GgmlType::Q4_0, 64), size_t(36));
        QVERIFY_THROWS_EXCEPTION(moe::Error, moe::ggml_row_size(GgmlType::Q4_K, 128));
        QCOMPARE(QString::fromStdString(moe::ggml_type_name(16)), QStringLiteral("IQ2_XXS"));
        try {
            moe::require_ggml_type(16, "x.gguf: tensor 'blk.0.ffn_up.weight'");
            QFAIL("expected an error");
        } catch (const moe::Error& e) {
            const QString m = e.what();
            QVERIFY2(m.contains("blk.0.ffn_up.weight") && m.contains("IQ2_XXS") && m.contains("16"),
                     e.what());
        }
        QVERIFY_THROWS_EXCEPTION(moe::Error, moe::require_ggml_type(99, "t"));
        QCOMPARE(moe::vec_dot_type(GgmlType::Q4_1), GgmlType::Q8_1);
        QCOMPARE(moe::vec_dot_type(GgmlType::Q5_1), GgmlType::Q8_1);
        QCOMPARE(moe::vec_dot_type(GgmlType::IQ4_XS), GgmlType::Q8_K);
        QCOMPARE(moe::vec_dot_type(GgmlType::IQ4_NL), GgmlType::Q8_0);
        QCOMPARE(moe::vec_dot_type(GgmlType::MXFP4), GgmlType::Q8_0);
        QCOMPARE(moe::vec_dot_type(GgmlType::Q3_K), GgmlType::Q8_K);
        QCOMPARE(moe::vec_dot_type(GgmlType::BF16), GgmlType::BF16);
    }

    void errors() {
        std::vector<float> x(100);
        std::vector<uint8_t> buf(1024);
        QVERIFY_THROWS_EXCEPTION(moe::Error,
                                 moe::dequantize_row(GgmlType::Q4_0, buf.data(), x.data(), 33));
        QVERIFY_THROWS_EXCEPTION(moe::Error,
                                 moe::quantize_row(GgmlType::Q6_K, x.data(), buf.data(), 100));
        QVERIFY_THROWS_EXCEPTION(moe::Error,
                                 moe::vec_dot(GgmlType::Q8_K, buf.data(), buf.data(), 256));
        QVERIFY_THROWS_EXCEPTION(moe::Error,
                                 moe::vec_dot(GgmlType::I32, buf.data(), buf.data(), 4));
        try {
            moe::require_quant_kernels(GgmlType::I16, "tensor 'a'");
            QFAIL("expected an error");
        } catch (const moe::Error& e) {
            QVERIFY2(QString(e.what()).contains("I16"), e.what());
        }
    }

    // (a) dequantization of random valid blocks equals gguf-py bit for bit.
    void dequantizeMatchesGgufPy_data() {
        QTest::addColumn<QString>("type");
        for (const auto& c : kWeightTypes) QTest::newRow(c.name) << QString(c.name);
    }
    void dequantizeMatchesGgufPy() {
        QFETCH(QString, type);
        const std::string name = type.toStdString();
        const GgmlType t = type_of(name);
        const auto& bytes = ref_tensor(name + "/dequant/bytes");
        const auto& values = ref_tensor(name + "/dequant/values");
        const int64_t rows = values.dim(0), n = values.dim(1);
        QCOMPARE(bytes.dim(1), int64_t(moe::ggml_row_size(t, n)));
        std::vector<float> out(static_cast<size_t>(n));
        int64_t mismatches = 0;
        for (int64_t r = 0; r < rows; ++r) {
            moe::dequantize_row(t, bytes.data + r * bytes.dim(1), out.data(), n);
            const auto* want = reinterpret_cast<const float*>(values.data) + r * n;
            for (int64_t i = 0; i < n; ++i) {
                if (std::memcmp(&out[size_t(i)], &want[i], 4) != 0) {
                    if (mismatches++ < 5)
                        qWarning("%s row %lld [%lld]: got %.9g want %.9g", name.c_str(),
                                 (long long)r, (long long)i, out[size_t(i)], want[i]);
                }
            }
        }
        QCOMPARE(mismatches, int64_t(0));
    }

    // (b) our reference quantizers produce gguf-py's bytes (which are ggml's *_ref bytes).
    void quantizeMatchesGgufPy_data() {
        QTest::addColumn<QString>("type");
        for (const char* n : {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "MXFP4", "BF16"})
            QTest::newRow(n) << QString(n);
    }
    void quantizeMatchesGgufPy() {
        QFETCH(QString, type);
        const std::string name = type.toStdString();
        const GgmlType t = type_of(name);
        const auto& input = ref_tensor(name + "/quant/input");
        const auto& bytes = ref_tensor(name + "/quant/bytes");
        const auto& values = ref_tensor(name + "/quant/values");
        const int64_t rows = input.dim(0), n = input.dim(1);
        const size_t rb = moe::ggml_row_size(t, n);
        QCOMPARE(bytes.dim(1), int64_t(rb));
        std::vector<uint8_t> q(rb);
        std::vector<float> deq(static_cast<size_t>(n));
        for (int64_t r = 0; r < rows; ++r) {
            moe::quantize_row(t, reinterpret_cast<const float*>(input.data) + r * n, q.data(), n);
            const uint8_t* want = bytes.data + r * int64_t(rb);
            for (size_t b = 0; b < rb; ++b)
                if (q[b] != want[b] && !zero_scale_sign_only(t, q.data(), want, b))
                    QFAIL(qPrintable(QString("%1 row %2 byte %3: got %4 want %5")
                                         .arg(type)
                                         .arg(r)
                                         .arg(b)
                                         .arg(q[b])
                                         .arg(want[b])));
            moe::dequantize_row(t, q.data(), deq.data(), n);
            const auto* want_values = reinterpret_cast<const float*>(values.data) + r * n;
            for (int64_t i = 0; i < n; ++i) QCOMPARE(deq[size_t(i)], want_values[i]);
        }
    }

    // (b) quantize -> dequantize error on fresh random rows stays within each format's bound.
    void roundTripError_data() {
        QTest::addColumn<QString>("type");
        QTest::addColumn<double>("bound");
        for (const auto& c : kWeightTypes)
            QTest::newRow(c.name) << QString(c.name) << c.max_rel_rms;
        QTest::newRow("Q8_1") << QString("Q8_1") << 0.006;
        QTest::newRow("Q8_K") << QString("Q8_K") << 0.01;
    }
    void roundTripError() {
        QFETCH(QString, type);
        QFETCH(double, bound);
        const GgmlType t = type_of(type.toStdString());
        std::mt19937 rng(fresh_seed());
        const int64_t n = 1024;
        double err2 = 0, ref2 = 0;
        std::vector<uint8_t> q(moe::ggml_row_size(t, n));
        std::vector<float> back(static_cast<size_t>(n));
        for (int row = 0; row < 16; ++row) {
            std::vector<float> x = random_row(rng, n);
            if (row == 1)
                for (float& v : x) v *= 1e-3f;  // small scales: fp16 subnormal-free but tiny
            moe::quantize_row(t, x.data(), q.data(), n);
            moe::dequantize_row(t, q.data(), back.data(), n);
            double e = 0, s = 0;
            for (int64_t i = 0; i < n; ++i) {
                e += double(back[size_t(i)] - x[size_t(i)]) * (back[size_t(i)] - x[size_t(i)]);
                s += double(x[size_t(i)]) * x[size_t(i)];
            }
            err2 += e / s;
            ref2 += 1;
        }
        const double rel = std::sqrt(err2 / ref2);
        qInfo("%s: relative RMS error %.5f (bound %.5f)", qPrintable(type), rel, bound);
        QVERIFY2(rel <= bound, qPrintable(QString::number(rel)));
        // All-zero input gives an all-zero output (no NaN from 0/0 scales).
        std::vector<float> zeros(static_cast<size_t>(n), 0.0f);
        moe::quantize_row(t, zeros.data(), q.data(), n);
        moe::dequantize_row(t, q.data(), back.data(), n);
        for (float v : back) QCOMPARE(v, 0.0f);
    }

    // (c) vec_dot equals the dot of the dequantized weight row with the dequantized quantized
    // activation (near-exact), and is close to the fp32 dot with the original activation.
    void vecDot_data() {
        QTest::addColumn<QString>("type");
        for (const auto& c : kWeightTypes) QTest::newRow(c.name) << QString(c.name);
    }
    void vecDot() {
        QFETCH(QString, type);
        const GgmlType t = type_of(type.toStdString());
        const GgmlType at = moe::vec_dot_type(t);
        std::mt19937 rng(fresh_seed());
        const int64_t n = 2048;
        std::vector<uint8_t> wq(moe::ggml_row_size(t, n));
        std::vector<uint8_t> xq(moe::ggml_row_size(at, n) + 4);
        void* xq_aligned = xq.data();  // vector storage is suitably aligned for Q8_K's f32
        std::vector<float> w(static_cast<size_t>(n)), xd(static_cast<size_t>(n));
        double sum_err = 0, sum_ref = 0, sum_err_f32 = 0;
        for (int row = 0; row < 32; ++row) {
            const std::vector<float> wf = random_row(rng, n);
            const std::vector<float> x = random_row(rng, n);
            moe::quantize_row(t, wf.data(), wq.data(), n);
            moe::dequantize_row(t, wq.data(), w.data(), n);
            moe::quantize_activation(at, x.data(), xq_aligned, n);
            moe::dequantize_row(at, xq_aligned, xd.data(), n);
            const double out = moe::vec_dot(t, wq.data(), xq_aligned, n);
            double ref = 0, ref_f32 = 0;
            for (int64_t i = 0; i < n; ++i) {
                ref += double(w[size_t(i)]) * xd[size_t(i)];
                ref_f32 += double(w[size_t(i)]) * x[size_t(i)];
            }
            if (at == GgmlType::Q8_1) ref = q8_1_reference(t, wq.data(), w, xq.data(), xd);
            sum_err += std::fabs(out - ref);
            sum_err_f32 += std::fabs(out - ref_f32);
            sum_ref += std::fabs(ref);
        }
        const double rel = sum_err / sum_ref, rel_f32 = sum_err_f32 / sum_ref;
        qInfo("%s x %s: mean|out-ref|/mean|ref| = %.3g (vs unquantized activation %.3g)",
              qPrintable(type), qPrintable(QString::fromStdString(moe::ggml_type_name(at))), rel,
              rel_f32);
        QVERIFY2(rel <= 1e-5, qPrintable(QString::number(rel)));
        QVERIFY2(rel_f32 <= 2e-2, qPrintable(QString::number(rel_f32)));
    }

    // Q8_K's bsums are the sums of its quants in groups of 16 (the K-quant dots rely on it).
    void q8kBlockSums() {
        std::mt19937 rng(fresh_seed());
        const std::vector<float> x = random_row(rng, 512);
        std::vector<uint8_t> q(moe::ggml_row_size(GgmlType::Q8_K, 512));
        moe::quantize_row(GgmlType::Q8_K, x.data(), q.data(), 512);
        for (int b = 0; b < 2; ++b) {
            const uint8_t* blk = q.data() + b * 292;
            const auto* qs = reinterpret_cast<const int8_t*>(blk + 4);
            for (int g = 0; g < 16; ++g) {
                int s = 0;
                for (int i = 0; i < 16; ++i) s += qs[g * 16 + i];
                int16_t bs;
                std::memcpy(&bs, blk + 4 + 256 + 2 * g, 2);
                QCOMPARE(int(bs), s);
            }
        }
    }
};

QTEST_GUILESS_MAIN(TestQuants)
#include "tst_quants.moc"
