// LoRA adapters at inference: a PEFT adapter applied by the engine reproduces the logits of
// transformers + peft (tests/data/lora-goldens, made by tools/make_lora_goldens.py with the
// hf-tiny rotary convention, see tests/data/README.md).
#include <QDir>
#include <QtTest>

#include "core/error.h"
#include "formats/safetensors.h"
#include "golden.h"
#include "model/model.h"
#include "test_paths.h"

namespace {

using moetest::data_dir;

moe::LoadOptions with_lora(const QString& adapter, float scale) {
    moe::LoadOptions o;
    o.bf16_rope_frequencies = true;
    o.lora_path = adapter.toStdString();
    o.lora_scale = scale;
    return o;
}

}  // namespace

class LoraInference : public QObject {
    Q_OBJECT

  private slots:
    void peftAdapterMatchesPeft_data() {
        QTest::addColumn<QString>("fixture");
        const QDir goldens(data_dir() + "/lora-goldens");
        for (const QString& f : goldens.entryList({"*.safetensors"}, QDir::Files)) {
            QTest::newRow(qPrintable(f)) << f.chopped(12);
        }
        QVERIFY(goldens.entryList({"*.safetensors"}).size() >= 5);
    }
    void peftAdapterMatchesPeft() {
        QFETCH(QString, fixture);
        const QString dir = data_dir() + "/hf-tiny/" + fixture;
        const auto f = moe::SafetensorsFile::open(
            (data_dir() + "/lora-goldens/" + fixture + ".safetensors").toStdString());
        const auto& ids_t = f->tensors().at("input_ids");
        const std::vector<int32_t> ids(
            reinterpret_cast<const int32_t*>(ids_t.data),
            reinterpret_cast<const int32_t*>(ids_t.data) + ids_t.numel());
        const auto& lt = f->tensors().at("logits");
        const std::vector<float> want(reinterpret_cast<const float*>(lt.data),
                                      reinterpret_cast<const float*>(lt.data) + lt.numel());
        auto adapted = moe::load_model(dir.toStdString(), with_lora(dir + "/lora", 1.0f));
        const double rel = moetest::relative_max_error(moetest::prompt_logits(*adapted, ids), want);
        QVERIFY2(rel <= 2e-3, qPrintable(QString("relative error %1").arg(rel)));
        // The adapter matters: the base model is far from the adapted reference, and scale 0
        // gives the base model back.
        moe::LoadOptions plain;
        plain.bf16_rope_frequencies = true;
        auto base = moe::load_model(dir.toStdString(), plain);
        const auto base_logits = moetest::prompt_logits(*base, ids);
        QVERIFY(moetest::relative_max_error(base_logits, want) > 1e-2);
        auto zero = moe::load_model(dir.toStdString(), with_lora(dir + "/lora", 0.0f));
        QVERIFY(moetest::relative_max_error(moetest::prompt_logits(*zero, ids), base_logits) <=
                1e-6);
    }

    // Routed-expert adapters (PEFT target_parameters) apply (tst_lora_gradients checks their
    // loss against PEFT); one made for other experts is refused with the shapes named.
    void mismatchedExpertAdapterIsNamed() {
        const QString qwen = data_dir() + "/hf-tiny/qwen3_moe-s1";
        const QString glm = data_dir() + "/hf-tiny/glm4_moe-s1";
        try {
            moe::load_model(glm.toStdString(), with_lora(qwen + "/lora", 1.0f));
            QFAIL("expected an error");
        } catch (const moe::Error& e) {
            QVERIFY2(QString(e.what()).contains("fits neither gate_up_proj nor down_proj"),
                     e.what());
        }
    }

    void mismatchedAdapterIsNamed() {
        const QString llama = data_dir() + "/hf-tiny/llama-s1";
        const QString olmoe = data_dir() + "/hf-tiny/olmoe-s1";
        try {
            moe::load_model(llama.toStdString(), with_lora(olmoe + "/lora", 1.0f));
            QFAIL("expected an error");
        } catch (const moe::Error& e) {
            QVERIFY2(QString(e.what()).contains("model.layers.0.self_attn"), e.what());
        }
    }
};

QTEST_APPLESS_MAIN(LoraInference)
#include "tst_lora_inference.moc"
