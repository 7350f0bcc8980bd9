// HF -> GGUF conversion: every fixture converted to F32 GGUF and loaded back reproduces the
// transformers goldens as the original folder does (names, layouts, metadata, Llama's q/k
// permutation, DeepSeek's k_b/v_b split, gpt-oss's experts, FP8 dequantisation all round-trip);
// quantized conversions load, run, and stay close. (The comparison with llama.cpp itself is
// tools/llamacpp_check.py, outside CI: see docs/benchmarks.md.)
#include <QDir>
#include <QTemporaryDir>
#include <QtTest>

#include "core/error.h"
#include "cpu/quants.h"
#include "formats/gguf.h"
#include "golden.h"
#include "model/gguf_export.h"
#include "model/model.h"

#include <cmath>
#include "test_paths.h"

namespace {

using moetest::data_dir;

std::vector<float> logits_of(const std::string& path, const std::vector<int32_t>& ids) {
    moe::LoadOptions o;
    o.bf16_rope_frequencies = true;  // the goldens' convention (tests/data/README.md)
    return moetest::prompt_logits(path, ids, o);
}

}  // namespace

class GgufConvert : public QObject {
    Q_OBJECT

    void rows() {
        QTest::addColumn<QString>("dir");
        for (const char* set : {"hf-tiny", "hf-extra"}) {
            for (const auto& d : moetest::fixture_dirs((data_dir() + "/" + set).toStdString())) {
                QTest::newRow(
                    qPrintable(QString(set) + "/" + QDir(QString::fromStdString(d)).dirName()))
                    << QString::fromStdString(d);
            }
        }
    }

  private slots:
    void f32RoundTripMatchesTransformers_data() { rows(); }
    void f32RoundTripMatchesTransformers() {
        QFETCH(QString, dir);
        QTemporaryDir tmp;
        const std::string out = tmp.filePath("m.gguf").toStdString();
        moe::GgufExportOptions o;
        o.type = moe::GgmlType::F32;
        const auto report = moe::export_gguf(dir.toStdString(), out, o);
        QVERIFY(report.tensors > 0);
        const auto g = moetest::read_golden(dir.toStdString() + "/golden.safetensors");
        const double rel = moetest::relative_max_error(logits_of(out, g.input_ids), g.logits);
        QVERIFY2(rel <= 2e-3, qPrintable(QString("relative error %1").arg(rel)));
    }

    // Each tensor of a quantized conversion, dequantized, is the F32 conversion's tensor within
    // the format's error; the model runs. (Tiny random MoE models amplify weight error into
    // routing changes, so logits are not compared here; tst_quants checks the kernels.)
    void quantizedConversionsStayClose_data() {
        QTest::addColumn<QString>("dir");
        QTest::addColumn<QString>("type");
        QTest::addColumn<double>("bound");
        const std::pair<const char*, double> types[] = {
            {"bf16", 0.005}, {"q8_0", 0.01},   {"q6_k", 0.02}, {"q5_k", 0.05},
            {"q4_k", 0.1},   {"iq4_nl", 0.12}, {"q4_0", 0.12}};
        for (const auto& [t, bound] : types) {
            for (const char* fx :
                 {"hf-extra/qwen3_moe-s2", "hf-tiny/deepseek_v3-s1", "hf-tiny/gpt_oss-s1"}) {
                QTest::newRow(qPrintable(QString(fx) + " " + t))
                    << data_dir() + "/" + fx << QString(t) << bound;
            }
        }
    }
    void quantizedConversionsStayClose() {
        QFETCH(QString, dir);
        QFETCH(QString, type);
        QFETCH(double, bound);
        QTemporaryDir tmp;
        const std::string ref_path = tmp.filePath("f32.gguf").toStdString();
        const std::string out = tmp.filePath("q.gguf").toStdString();
        moe::GgufExportOptions o;
        o.type = moe::GgmlType::F32;
        moe::export_gguf(dir.toStdString(), ref_path, o);
        o.type = moe::parse_export_type(type.toStdString());
        const auto report = moe::export_gguf(dir.toStdString(), out, o);
        const auto ref = moe::GgufFile::open(ref_path);
        const auto q = moe::GgufFile::open(out);
        QCOMPARE(q->tensors().size(), ref->tensors().size());
        size_t in_type = 0;
        for (const auto& t : q->tensors()) {
            const auto& r = ref->tensor(t.name);
            QCOMPARE(t.ne, r.ne);
            if (t.type == moe::GgmlType::F32) continue;
            in_type += t.type == o.type;
            std::vector<float> a(static_cast<size_t>(t.numel())), b(a.size());
            moe::dequantize_row(t.type, t.data, a.data(), t.numel());
            moe::dequantize_row(r.type, r.data, b.data(), r.numel());
            double err = 0, ref_sq = 0;
            for (size_t i = 0; i < a.size(); ++i) {
                err += (a[i] - b[i]) * double(a[i] - b[i]);
                ref_sq += double(b[i]) * b[i];
            }
            const double rel = std::sqrt(err / ref_sq);
            QVERIFY2(rel <= bound,
                     qPrintable(QString("%1 (%2): relative RMS error %3")
                                    .arg(QString::fromStdString(t.name),
                                         QString::fromStdString(moe::ggml_type_name(t.type)))
                                    .arg(rel)));
        }
        QVERIFY2(in_type > 0 || report.fallback_tensors > 0, "no tensor was converted");
        const auto g = moetest::read_golden(dir.toStdString() + "/golden.safetensors");
        const auto logits = logits_of(out, g.input_ids);
        for (float v : logits) QVERIFY(std::isfinite(v));
    }

    void unknownTypeIsNamed() {
        try {
            moe::parse_export_type("q7_k");
            QFAIL("expected an error");
        } catch (const moe::Error& e) {
            QVERIFY(QString(e.what()).contains("q7_k") && QString(e.what()).contains("q4_k"));
        }
    }
};

QTEST_APPLESS_MAIN(GgufConvert)
#include "tst_gguf_convert.moc"
