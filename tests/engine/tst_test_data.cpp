// Checks the test environment itself: the fixtures copied into tests/data are
// present and complete, and ../shared/fixtures is found when it exists.
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QtTest>

class TestData : public QObject {
    Q_OBJECT

    static QString env(const char* name, const char* fallback) {
        const QByteArray v = qgetenv(name);
        return v.isEmpty() ? QString::fromUtf8(fallback) : QString::fromLocal8Bit(v);
    }

  private slots:
    void hfTinyIsComplete_data() {
        QTest::addColumn<QString>("arch");
        for (const char* a : {"llama", "qwen3_moe", "qwen2_moe", "mixtral", "olmoe", "deepseek_v2",
                              "deepseek_v3", "glm4_moe", "gpt_oss"})
            QTest::newRow(a) << QString::fromLatin1(a);
    }

    void hfTinyIsComplete() {
        QFETCH(QString, arch);
        const QDir dir(env("MOE_TEST_DATA", MOE_TEST_DATA_DIR) + "/hf-tiny/" + arch + "-s1");
        QVERIFY2(dir.exists(), qPrintable(dir.path()));
        for (const char* f : {"config.json", "model.safetensors", "golden.json",
                              "golden.safetensors", "lora_golden.safetensors",
                              "lora/adapter_config.json", "lora/adapter_model.safetensors"})
            QVERIFY2(QFileInfo::exists(dir.filePath(QString::fromLatin1(f))),
                     qPrintable(dir.filePath(QString::fromLatin1(f))));

        QFile cfg(dir.filePath("config.json"));
        QVERIFY(cfg.open(QIODevice::ReadOnly));
        const QJsonObject obj = QJsonDocument::fromJson(cfg.readAll()).object();
        QCOMPARE(obj.value("model_type").toString(), arch);
    }

    void sharedFixturesWhenPresent() {
        const QDir shared(env("MOE_SHARED_FIXTURES", MOE_SHARED_FIXTURES_DIR));
        if (!shared.exists())
            QSKIP(qPrintable("../shared/fixtures not found at " + shared.path() +
                             " - tests that need stories260K skip"));
        QVERIFY(QFileInfo::exists(shared.filePath("stories260K/stories260K.gguf")));
    }
};

QTEST_GUILESS_MAIN(TestData)
#include "tst_test_data.moc"
