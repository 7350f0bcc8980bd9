// The moestudio-cli contract, driven as a user or script would: info JSON, logits file,
// generated ids, text generation on the built-in demo model, and one-line errors.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include "cuda/gpu.h"

#include <cstring>

#include "formats/safetensors.h"
#include "golden.h"

namespace {

struct Run {
    int code = -1;
    QString out, err;
};

Run cli(const QStringList& args) {
    QProcess p;
    p.start(QString::fromLocal8Bit(qgetenv("MOE_CLI")), args);
    Run r;
    if (!p.waitForFinished(300000)) return r;
    r.code = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -2;
    r.out = QString::fromUtf8(p.readAllStandardOutput());
    r.err = QString::fromUtf8(p.readAllStandardError());
    return r;
}

QString fixture(const char* name) {
    const QByteArray v = qgetenv("MOE_TEST_DATA");
    return (v.isEmpty() ? QStringLiteral(MOE_TEST_DATA_DIR) : QString::fromLocal8Bit(v)) +
           "/hf-tiny/" + name;
}

QString ids_arg(const std::vector<int32_t>& ids) {
    QStringList s;
    for (int32_t i : ids) s << QString::number(i);
    return s.join(',');
}

}  // namespace

class Cli : public QObject {
    Q_OBJECT

  private slots:
    void initTestCase() {
        if (qgetenv("MOE_CLI").isEmpty()) QSKIP("MOE_CLI not set (moestudio-cli not built)");
    }

    void infoReportsTheModel() {
        const Run r = cli({"info", fixture("deepseek_v3-s1")});
        QCOMPARE(r.code, 0);
        const QJsonObject j = QJsonDocument::fromJson(r.out.toUtf8()).object();
        QCOMPARE(j["architecture"].toString(), QString("deepseek_v3"));
        QCOMPARE(j["layers"].toInt(), 3);
        QCOMPARE(j["hidden_size"].toInt(), 96);
        QCOMPARE(j["experts"].toInt(), 16);
        QCOMPARE(j["experts_per_token"].toInt(), 4);
        QCOMPARE(j["dtype"].toString(), QString("BF16"));
        const qint64 total = j["parameters"].toObject()["total"].toInteger();
        const qint64 active = j["parameters"].toObject()["active"].toInteger();
        // 2 MoE layers x 12 unchosen experts x 3 matrices of 32x96.
        QCOMPARE(total - active, qint64(2 * 12 * 3 * 32 * 96));
        QVERIFY(total > 0);
    }

    void logitsAndIdsMatchGoldens() {
        const QString dir = fixture("qwen3_moe-s1");
        const auto g = moetest::read_golden((dir + "/golden.safetensors").toStdString());
        QTemporaryDir tmp;
        const QString out = tmp.filePath("logits.safetensors");
        Run r = cli({"logits", dir, "--prompt-ids", ids_arg(g.input_ids), "--out", out,
                     "--rope-freq-bf16"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const auto f = moe::SafetensorsFile::open(out.toStdString());
        const auto& t = f->tensors().at("logits");
        QCOMPARE(t.dtype, moe::DType::F32);
        QCOMPARE(t.shape, (std::vector<int64_t>{int64_t(g.input_ids.size()), g.vocab}));
        std::vector<float> got(size_t(t.numel()));
        std::memcpy(got.data(), t.data, t.nbytes);
        QVERIFY(moetest::relative_max_error(got, g.logits) <= 2e-3);

        r = cli({"generate", dir, "--prompt-ids", ids_arg(g.input_ids), "--max-new-tokens",
                 QString::number(g.greedy_ids.size()), "--greedy", "--ids", "--rope-freq-bf16"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QCOMPARE(r.out.trimmed(), ids_arg(g.greedy_ids));
    }

    void seededSamplingIsReproducible() {
        const QStringList args = {"generate",
                                  fixture("mixtral-s1"),
                                  "--prompt-ids",
                                  "5,6,7",
                                  "--max-new-tokens",
                                  "12",
                                  "--temperature",
                                  "1.5",
                                  "--top-p",
                                  "0.9",
                                  "--top-k",
                                  "50",
                                  "--min-p",
                                  "0.01",
                                  "--seed",
                                  "42",
                                  "--ids"};
        const Run a = cli(args), b = cli(args);
        QCOMPARE(a.code, 0);
        QCOMPARE(a.out, b.out);
        QCOMPARE(a.out.trimmed().split(',').size(), 12);
    }

    void demoModelGeneratesText() {
        QTemporaryDir tmp;
        Run r = cli({"make-demo", "--out", tmp.path()});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        r = cli({"generate", tmp.path(), "--prompt", "Once upon a time", "--max-new-tokens", "16",
                 "--seed", "1"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY(!r.out.trimmed().isEmpty());
        r = cli({"info", tmp.path()});
        QCOMPARE(QJsonDocument::fromJson(r.out.toUtf8()).object()["architecture"].toString(),
                 QString("qwen3_moe"));
        // The DeepSeek-V2-Lite layout (MLA, shared experts, a dense first layer), scaled down.
        QTemporaryDir ds;
        r = cli({"make-demo", "--out", ds.path(), "--shape", "deepseek-v2-lite", "--layers", "2",
                 "--hidden", "128", "--experts", "8", "--top-k", "2", "--moe-inter", "32"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        r = cli(
            {"generate", ds.path(), "--prompt", "Once", "--max-new-tokens", "4", "--seed", "1"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        r = cli({"info", ds.path()});
        const QJsonObject info = QJsonDocument::fromJson(r.out.toUtf8()).object();
        QCOMPARE(info["architecture"].toString(), QString("deepseek_v2"));
        QCOMPARE(info["moe_layers"].toInt(), 1);
        r = cli({"make-demo", "--out", ds.path(), "--shape", "llama-7b"});
        QCOMPARE(r.code, 1);
        QVERIFY2(r.err.contains("unknown --shape"), qPrintable(r.err));
    }

    // placement plan / show, and generate with a GPU placement: run through the GPU path, or
    // refused with the reason where there is no GPU (or no CUDA in the build).
    void placementPlanShowAndCheck() {
        QTemporaryDir tmp;
        const QString file = tmp.filePath("p.json");
        Run r =
            cli({"placement", "plan", fixture("qwen3_moe-s1"), "--gpu-budget", "1", "--out", file});
        QCOMPARE(r.code, 0);
        QVERIFY2(r.out.contains("experts 16/16 (100 %)"), qPrintable(r.out));
        r = cli({"placement", "show", file, "--model", fixture("qwen3_moe-s1")});
        QCOMPARE(r.code, 0);
        r = cli({"placement", "show", file, "--model", fixture("mixtral-s1")});
        QCOMPARE(r.code, 1);
        QVERIFY2(r.err.contains("another model"), qPrintable(r.err));
        r = cli({"generate", fixture("qwen3_moe-s1"), "--prompt-ids", "1,2", "--placement", file});
        if (moe::list_gpus().empty()) {
            QCOMPARE(r.code, 1);
            QVERIFY2(r.err.contains("no GPU is usable") || r.err.contains("no CUDA path"),
                     qPrintable(r.err));
        } else {
            QVERIFY2(r.code == 0, qPrintable(r.err));
        }
        r = cli({"placement", "plan", fixture("qwen3_moe-s1"), "--cpu-experts", "all", "--json"});
        QCOMPARE(r.code, 0);
        QCOMPARE(QJsonDocument::fromJson(r.out.toUtf8()).object()["version"].toInt(), 1);
    }

    void placementCalibrateAndPredict() {
        QTemporaryDir tmp;
        const QString rates = tmp.filePath("rates.json"), placement = tmp.filePath("p.json");
        Run r = cli({"placement", "calibrate", fixture("qwen3_moe-s1"), "--out", rates, "--steps",
                     "2", "--prompt-tokens", "8", "--quiet"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY(QFile::exists(rates));
        r = cli({"placement", "plan", fixture("qwen3_moe-s1"), "--cpu-experts", "all", "--out",
                 placement, "--rates", rates});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY2(r.out.contains("predicted: decode "), qPrintable(r.out));
        // A CPU-only placement from these CPU rates; a GPU one needs GPU rates, said so.
        r = cli({"placement", "plan", fixture("qwen3_moe-s1"), "--gpu-budget", "0", "--out",
                 placement});
        QCOMPARE(r.code, 0);
        r = cli({"placement", "predict", fixture("qwen3_moe-s1"), "--placement", placement,
                 "--rates", rates, "--json"});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        const QJsonObject pred =
            QJsonDocument::fromJson(r.out.toUtf8()).object()["prediction"].toObject();
        QVERIFY(pred["decode_tok_s"].toDouble() > 0);
        r = cli(
            {"placement", "plan", fixture("qwen3_moe-s1"), "--gpu-budget", "1", "--rates", rates});
        QCOMPARE(r.code, 1);
        QVERIFY2(r.err.contains("no GPU figures"), qPrintable(r.err));
    }

    void exportAdapterMergedAndPeft() {
        QTemporaryDir tmp;
        const QString merged = tmp.filePath("merged"), peft = tmp.filePath("peft");
        Run r = cli({"export-adapter", fixture("qwen3_moe-s1"), "--adapter",
                     fixture("qwen3_moe-s1") + "/lora", "--format", "merged", "--out", merged});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY(QFile::exists(merged + "/model.safetensors") &&
                QFile::exists(merged + "/config.json"));
        r = cli(
            {"logits", merged, "--prompt-ids", "1,2,3", "--out", tmp.filePath("l.safetensors")});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        r = cli({"export-adapter", fixture("qwen3_moe-s1"), "--adapter",
                 fixture("qwen3_moe-s1") + "/lora", "--format", "peft", "--out", peft});
        QVERIFY2(r.code == 0, qPrintable(r.err));
        QVERIFY(QFile::exists(peft + "/adapter_model.safetensors"));
        r = cli({"export-adapter", fixture("qwen3_moe-s1"), "--adapter",
                 fixture("qwen3_moe-s1") + "/lora", "--format", "zip", "--out", peft});
        QCOMPARE(r.code, 1);
        QVERIFY2(r.err.contains("merged, peft or gguf"), qPrintable(r.err));
    }

    void devicesReportsCpuAndGpus() {
        const Run r = cli({"devices"});
        QCOMPARE(r.code, 0);
        const QJsonObject j = QJsonDocument::fromJson(r.out.toUtf8()).object();
        QVERIFY(j["cpu"].toObject()["physical_cores"].toInt() >= 1);
        QVERIFY(!j["cpu"].toObject()["expert_kernels"].toString().isEmpty());
        QVERIFY(j["gpus"].isArray());
        if (j["gpus"].toArray().isEmpty()) QVERIFY(!j["gpu_unavailable"].toString().isEmpty());
    }

    // bench e2e reports llama-bench's pp/tg records as JSON.
    void benchE2eJson() {
        const Run r = cli({"bench", "e2e", fixture("qwen3_moe-s1"), "--prompt-tokens", "8",
                           "--gen-tokens", "4", "--repetitions", "2", "--json"});
        QCOMPARE(r.code, 0);
        const QJsonArray a = QJsonDocument::fromJson(r.out.toUtf8()).array();
        QCOMPARE(a.size(), 2);
        QCOMPARE(a[0].toObject()["n_prompt"].toInt(), 8);
        QCOMPARE(a[1].toObject()["n_gen"].toInt(), 4);
        for (const auto& v : a) {
            QVERIFY(v.toObject()["avg_ts"].toDouble() > 0);
            QCOMPARE(v.toObject()["samples_ts"].toArray().size(), 2);
            QCOMPARE(v.toObject()["expert_format"].toString(), QString("bf16-exact"));
        }
    }

    void errorsAreOneClearLine_data() {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("needle");
        QTest::newRow("unknown option")
            << QStringList{"info", fixture("llama-s1"), "--bogus"} << "unknown option --bogus";
        QTest::newRow("missing model")
            << QStringList{"info", "/nonexistent/model"} << "/nonexistent/model: no such file";
        QTest::newRow("bad ids") << QStringList{"generate", fixture("llama-s1"), "--prompt-ids",
                                                "1,x"}
                                 << "--prompt-ids expects comma-separated token ids";
        QTest::newRow("id out of vocab")
            << QStringList{"logits", fixture("llama-s1"),     "--prompt-ids", "1,999999",
                           "--out",  "/tmp/never.safetensors"}
            << "outside the vocabulary";
        QTest::newRow("unknown command") << QStringList{"frobnicate"} << "unknown command";
        QTest::newRow("cpu-experts")
            << QStringList{"placement", "plan", fixture("llama-s1"), "--cpu-experts", "some"}
            << "--cpu-experts: expected all, none or auto";
        QTest::newRow("both prompts")
            << QStringList{"generate", fixture("llama-s1"), "--prompt", "a", "--prompt-ids", "1"}
            << "usage:";
    }
    void errorsAreOneClearLine() {
        QFETCH(QStringList, args);
        QFETCH(QString, needle);
        const Run r = cli(args);
        QVERIFY(r.code > 0);
        QVERIFY2(r.err.contains(needle), qPrintable(r.err));
        QCOMPARE(r.err.trimmed().count('\n'), 0);
        QVERIFY(r.out.isEmpty());
    }
};

QTEST_APPLESS_MAIN(Cli)
#include "tst_cli.moc"
