// api/model_library.h: models found where Hugging Face, LM Studio and Ollama keep them, and
// described from their headers (compared with what loading them reports).
#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

#include "api/model_library.h"
#include "model/gguf_export.h"
#include "model/model.h"
#include "test_paths.h"

class TestModelLibrary : public QObject {
    Q_OBJECT

    QTemporaryDir tmp_;
    QString fixture_ = moetest::data_dir() + "/hf-tiny/qwen3_moe-s1";

    static void copy(const QString& from, const QString& to) {
        QDir().mkpath(QFileInfo(to).path());
        QFile::remove(to);
        QVERIFY2(QFile::copy(from, to), qPrintable(from + " -> " + to));
    }

  private slots:
    void findsHuggingFaceLmStudioAndOllamaModels() {
        const QString hub = tmp_.filePath("hf/hub");
        const QString snap = hub + "/models--Org--Tiny-MoE/snapshots/0123abcd";
        copy(fixture_ + "/config.json", snap + "/config.json");
        copy(fixture_ + "/model.safetensors", snap + "/model.safetensors");
        // A GGUF of the same model, in LM Studio's layout and as an Ollama blob.
        const QString gguf = tmp_.filePath("tiny.gguf");
        moe::GgufExportOptions o;
        o.type = moe::GgmlType::Q8_0;
        moe::export_gguf(fixture_.toStdString(), gguf.toStdString(), o);
        const QString lms = tmp_.filePath("lmstudio/models/org/tiny-GGUF/tiny-Q8_0.gguf");
        copy(gguf, lms);
        const QString ollama = tmp_.filePath("ollama/models");
        copy(gguf, ollama + "/blobs/sha256-0011aabb");
        QDir().mkpath(ollama + "/manifests/registry.ollama.ai/library/tiny");
        std::ofstream(
            QString(ollama + "/manifests/registry.ollama.ai/library/tiny/latest").toStdString())
            << R"({"layers":[{"mediaType":"application/vnd.ollama.image.model",)"
            << R"("digest":"sha256:0011aabb"}]})";
        // Not models: a .gguf that is not GGUF, a config without weights.
        std::ofstream(tmp_.filePath("lmstudio/models/fake.gguf").toStdString()) << "nope";
        QDir().mkpath(tmp_.filePath("lmstudio/models/empty"));
        std::ofstream(tmp_.filePath("lmstudio/models/empty/config.json").toStdString()) << "{}";

        const auto found =
            moe::discover_models({hub.toStdString(), tmp_.filePath("lmstudio/models").toStdString(),
                                  ollama.toStdString(), tmp_.filePath("missing").toStdString()});
        QCOMPARE(found.size(), size_t(3));
        QCOMPARE(found[0].name, std::string("Org/Tiny-MoE"));
        QCOMPARE(found[0].source, std::string("huggingface"));
        QCOMPARE(found[1].name, std::string("tiny-Q8_0.gguf"));
        QCOMPARE(found[1].source, std::string("lmstudio"));
        QCOMPARE(found[2].name, std::string("tiny:latest"));
        QCOMPARE(found[2].source, std::string("ollama"));

        const auto model = moe::load_model(fixture_.toStdString());
        for (const auto& e : found) {
            const moe::ModelDescription d = moe::describe_model(e.path);
            QVERIFY2(d.error.empty(), d.error.c_str());
            QCOMPARE(d.architecture, std::string("qwen3_moe"));
            QCOMPARE(d.experts, model->info().experts);
            QCOMPARE(d.experts_per_token, model->info().experts_per_token);
            QCOMPARE(d.layers, model->info().layers);
            QVERIFY(d.params_active < d.params_total && d.params_active > 0);
            QVERIFY(d.file_bytes > 0 && d.fits_ram);
        }
        const moe::ModelDescription hf = moe::describe_model(found[0].path);
        QCOMPARE(hf.params_total, model->info().params_total);
        QCOMPARE(hf.params_active, model->info().params_active);
        QCOMPARE(hf.dtype, std::string("BF16"));
        QCOMPARE(moe::describe_model(found[1].path).dtype, std::string("Q8_0"));
    }

    void unreadableModelIsDescribedAsAnError() {
        const moe::ModelDescription d = moe::describe_model(tmp_.filePath("nothing").toStdString());
        QVERIFY(!d.error.empty());
        QVERIFY(!moe::default_model_roots().empty());
    }
};

QTEST_APPLESS_MAIN(TestModelLibrary)
#include "tst_model_library.moc"
