// A real fine-tune that visibly works (issue 7): stories260K made MoE (the shared fixture
// stories260K-moe4x2-identical.gguf, 4 experts of which 2 per token) tells stories about a
// girl named Lily. The test samples stories from it with the CLI, renames the heroine to Zara,
// trains a LoRA adapter on attention and the routed experts (`moestudio-cli train`), and checks
// that greedy generation with the adapter (`generate --lora`, the exported PEFT folder) now
// names Zara where the base model names Lily; the held-out loss falls, metrics are written.
#include <QDir>
#include <QFile>
#include <QJsonDocument>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include "test_paths.h"

namespace {

struct Run {
    int code = -1;
    QString out, err;
};

Run cli(const QStringList& args) {
    Run r;
    QProcess p;
    p.start(QString::fromLocal8Bit(qgetenv("MOE_CLI")), args);
    if (!p.waitForFinished(300000)) return r;
    r.code = p.exitCode();
    r.out = QString::fromUtf8(p.readAllStandardOutput());
    r.err = QString::fromUtf8(p.readAllStandardError());
    return r;
}

}  // namespace

class LoraFinetune : public QObject {
    Q_OBJECT

  private slots:
    void heroineRenamed() {
        if (qEnvironmentVariableIsEmpty("MOE_CLI"))
            QSKIP("MOE_CLI is not set (the CLI is not built)");
        const QString model =
            moetest::shared_fixtures_dir() + "/stories260K/stories260K-moe4x2-identical.gguf";
        if (!QFile::exists(model))
            QSKIP(qPrintable(model + " is absent (../shared/fixtures is not beside the checkout)"));
        const QStringList greedy = {"generate",         model, "--prompt", "Once upon a time",
                                    "--max-new-tokens", "16",  "--greedy"};
        const Run base = cli(greedy);
        QCOMPARE(base.code, 0);
        QVERIFY2(base.out.contains("named Lily") && !base.out.contains("Zara"),
                 qPrintable(base.out));

        // The data: the model's own stories with the heroine renamed.
        QTemporaryDir tmp;
        QFile data(tmp.filePath("stories.txt"));
        QVERIFY(data.open(QIODevice::WriteOnly));
        int stories = 0;
        for (int seed = 1; seed <= 40; ++seed) {
            const Run s =
                cli({"generate", model, "--prompt", "Once upon a time", "--max-new-tokens", "80",
                     "--temperature", "0.8", "--seed", QString::number(seed)});
            QCOMPARE(s.code, 0);
            if (!s.out.contains("Lily")) continue;
            QString story = "Once upon a time" + s.out.trimmed();
            story.replace("Lily", "Zara");
            data.write((story + "\n\n").toUtf8());
            ++stories;
        }
        data.close();
        QVERIFY2(stories >= 12, qPrintable(QString("only %1 stories name Lily").arg(stories)));

        const QString out = tmp.filePath("run");
        const Run train =
            cli({"train",    model,  "--data",          data.fileName(),
                 "--out",    out,    "--targets",       "q_proj,k_proj,v_proj,o_proj,experts",
                 "--rank",   "8",    "--alpha",         "16",
                 "--lr",     "5e-3", "--epochs",        "3",
                 "--cutoff", "128",  "--eval-fraction", "0.1",
                 "--seed",   "1",    "--quiet"});
        QVERIFY2(train.code == 0, qPrintable(train.err));
        QVERIFY(QFile::exists(out + "/adapter/adapter_config.json"));
        QVERIFY(QFile::exists(out + "/adapter/adapter_model.safetensors"));

        // The held-out loss went down: metrics.jsonl has the first and the last step.
        QFile metrics(out + "/metrics.jsonl");
        QVERIFY(metrics.open(QIODevice::ReadOnly));
        const QList<QByteArray> lines = metrics.readAll().trimmed().split('\n');
        QVERIFY(lines.size() >= 10);
        const double first = QJsonDocument::fromJson(lines.front())["loss"].toDouble();
        const double last_eval = QJsonDocument::fromJson(lines.back())["eval_loss"].toDouble();
        QVERIFY2(
            last_eval > 0 && last_eval < first,
            qPrintable(QString("first loss %1, final eval loss %2").arg(first).arg(last_eval)));

        QStringList tuned = greedy;
        tuned << "--lora" << out + "/adapter";
        const Run after = cli(tuned);
        QCOMPARE(after.code, 0);
        QVERIFY2(after.out.contains("named Zara") && !after.out.contains("Lily"),
                 qPrintable(after.out));

        // Attention only: the adapter also comes as a llama.cpp GGUF, which gives the same text.
        const QString att = tmp.filePath("attention");
        const Run train2 = cli({"train",    model,  "--data",    data.fileName(),
                                "--out",    att,    "--targets", "q_proj,k_proj,v_proj,o_proj",
                                "--rank",   "8",    "--alpha",   "16",
                                "--lr",     "1e-2", "--epochs",  "3",
                                "--cutoff", "128",  "--seed",    "2",
                                "--quiet"});
        QVERIFY2(train2.code == 0, qPrintable(train2.err));
        QVERIFY(QFile::exists(att + "/adapter.gguf"));
        QStringList peft = greedy, gguf = greedy;
        peft << "--max-new-tokens"
             << "40"
             << "--lora" << att + "/adapter";
        gguf << "--max-new-tokens"
             << "40"
             << "--lora" << att + "/adapter.gguf";
        const Run a = cli(peft), b = cli(gguf);
        QCOMPARE(a.code, 0);
        QCOMPARE(b.code, 0);
        QCOMPARE(b.out, a.out);
        QStringList plain = greedy;
        plain << "--max-new-tokens"
              << "40";
        const Run base40 = cli(plain);
        QVERIFY2(a.out != base40.out, qPrintable(a.out));  // the adapter changes the text
    }
};

QTEST_APPLESS_MAIN(LoraFinetune)
#include "tst_lora_finetune.moc"
