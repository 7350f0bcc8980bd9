// LoRA training's reference backward pass against PEFT: for every hf-tiny fixture with its
// adapter, the loss of lora_golden.safetensors' labels and the gradient of every LoRA tensor
// (PEFT names ...q_proj.lora_A.default.weight) within 1e-3 relative (max |diff| / max |golden|
// per tensor); routed-expert terms (PEFT target_parameters) compared in PEFT's fused layout.
#include <QDir>
#include <QtTest>

#include "core/error.h"
#include "formats/safetensors.h"
#include "golden.h"
#include "model/decoder_model.h"
#include "model/lora_adapter.h"
#include "model/model.h"
#include "test_paths.h"
#include "train/lora_gradients.h"
#include "train/peft_layout.h"

namespace {}  // namespace

class LoraGradients : public QObject {
    Q_OBJECT

  private slots:
    void matchesPeft_data() {
        QTest::addColumn<QString>("fixture");
        const QDir root(moetest::data_dir() + "/hf-tiny");
        for (const QString& f : root.entryList(QDir::Dirs | QDir::NoDotAndDotDot))
            if (QFileInfo(root.filePath(f) + "/lora_golden.safetensors").exists())
                QTest::newRow(qPrintable(f)) << f;
    }

    // The inference path with the adapter applied (routed-expert terms merged into the experts
    // the fused operator runs) gives PEFT's loss on the same labels.
    void inferenceLossMatchesPeft_data() { matchesPeft_data(); }
    void inferenceLossMatchesPeft() {
        QFETCH(QString, fixture);
        const QString dir = moetest::data_dir() + "/hf-tiny/" + fixture;
        const moetest::LoraGolden lgd = moetest::read_lora_golden(dir.toStdString());
        const auto& ids = lgd.ids;
        const auto& labels = lgd.labels;
        const double want_loss = lgd.loss;
        moe::LoadOptions o;
        o.bf16_rope_frequencies = true;
        o.lora_path = (dir + "/lora").toStdString();
        std::unique_ptr<moe::Model> m;
        std::vector<float> logits;
        try {
            m = moe::load_model(dir.toStdString(), o);
            logits = moetest::prompt_logits(*m, ids);
        } catch (const std::exception& e) {
            QFAIL(e.what());
        }
        std::vector<float> dlogits;
        const double loss = moe::train::cross_entropy(logits.data(), int64_t(ids.size()),
                                                      m->info().vocab_size, labels.data(), dlogits);
        QVERIFY2(std::abs(loss - want_loss) <= 2e-3 * std::abs(want_loss),
                 qPrintable(QString("loss %1 vs PEFT %2").arg(loss).arg(want_loss)));
    }

    void matchesPeft() {
        QFETCH(QString, fixture);
        const QString dir = moetest::data_dir() + "/hf-tiny/" + fixture;
        const moetest::LoraGolden lgd = moetest::read_lora_golden(dir.toStdString());
        const auto& ids = lgd.ids;
        const auto& labels = lgd.labels;
        const double want_loss = lgd.loss;
        const auto& lg = lgd.file;

        moe::LoadOptions o;
        o.bf16_rope_frequencies = true;  // as the goldens (tests/data/README.md)
        o.expert_format = "reference";
        o.lora_path = (dir + "/lora").toStdString();
        auto m = moe::load_model(dir.toStdString(), o);
        auto* d = dynamic_cast<moe::DecoderModel*>(m.get());
        QVERIFY(d);
        const moe::train::LossAndGrads got = moe::train::lora_loss_and_grads(*d, ids, labels);
        QCOMPARE(moe::train::lora_loss(*d, ids, labels), got.loss);  // the forward-only loss
        QVERIFY2(std::abs(got.loss - want_loss) <= 1e-4 * std::abs(want_loss),
                 qPrintable(QString("loss %1 vs PEFT %2").arg(got.loss).arg(want_loss)));

        // PEFT's layout, fused expert tensors (target_parameters) included.
        auto adapter = moe::load_peft_adapter((dir + "/lora").toStdString());
        moe::resolve_fused_experts(adapter, *d);
        const auto mine = moe::train::peft_gradients(adapter, got.grads);
        int checked = 0;
        for (const auto& [name, t] : lg->tensors()) {
            const std::string prefix = "base_model.model.";
            const auto a = name.find(".lora_A.default.weight");
            const auto b = name.find(".lora_B.default.weight");
            if (a == std::string::npos && b == std::string::npos) continue;
            const std::string key =
                name.substr(prefix.size(), (a != std::string::npos ? a : b) - prefix.size()) +
                (a != std::string::npos ? ".lora_A" : ".lora_B");
            const auto it = mine.find(key);
            QVERIFY2(it != mine.end(), qPrintable(QString::fromStdString(key)));
            const auto want = moetest::tensor_values<float>(*lg, name);
            QCOMPARE(it->second.size(), want.size());
            const double rel = moetest::relative_max_error(it->second, want);
            QVERIFY2(
                rel <= 1e-3,
                qPrintable(
                    QString("%1: relative error %2").arg(QString::fromStdString(name)).arg(rel)));
            ++checked;
        }
        qInfo("%s: loss %.6f (PEFT %.6f), %d gradient tensors within 1e-3", qPrintable(fixture),
              got.loss, want_loss, checked);
        QCOMPARE(size_t(checked), mine.size());  // every adapter tensor was checked
        // Gradient checkpointing (each layer run again in the backward pass): the same numbers.
        const auto again = moe::train::lora_loss_and_grads(*d, ids, labels, true);
        QCOMPARE(again.loss, got.loss);
        for (const auto& [module, g] : got.grads) {
            QCOMPARE(again.grads.at(module).a, g.a);
            QCOMPARE(again.grads.at(module).b, g.b);
        }
        QVERIFY(checked > 0);
    }
};

QTEST_APPLESS_MAIN(LoraGradients)
#include "tst_lora_gradients.moc"
