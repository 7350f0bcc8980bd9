// Merge-into-base export (train/lora_merge.h, moestudio-cli export-adapter --format merged): for
// every hf-tiny fixture's PEFT adapter (attention, dense MLP and fused routed-expert
// target_parameters), the merged checkpoint loaded as a plain model gives the prompt logits of
// the base model with the adapter applied — much closer to them than the base model is (the
// merge is not a no-op), within the bf16 rounding of the merged weights — and malformed
// requests are refused with the layer or folder named.
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>
#include <filesystem>

#include "core/error.h"
#include "golden.h"
#include "model/decoder_model.h"
#include "model/lora_adapter.h"
#include "model/model.h"
#include "test_paths.h"
#include "train/lora_merge.h"

namespace {

std::vector<float> logits_of(const std::string& dir, const std::string& lora,
                             const std::vector<int32_t>& ids) {
    moe::LoadOptions o;
    o.bf16_rope_frequencies = true;
    o.lora_path = lora;
    auto m = moe::load_model(dir, o);
    return moetest::prompt_logits(*m, ids);
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double d = 0;
    for (size_t i = 0; i < a.size(); ++i) d = std::max(d, double(std::abs(a[i] - b[i])));
    return d;
}

}  // namespace

class TestLoraMerge : public QObject {
    Q_OBJECT

  private slots:
    void mergedEqualsAdapted_data() {
        QTest::addColumn<QString>("dir");
        for (const auto& d :
             moetest::fixture_dirs((moetest::data_dir() + "/hf-tiny").toStdString()))
            if (std::filesystem::exists(d + "/lora/adapter_config.json"))
                QTest::newRow(d.substr(d.find_last_of('/') + 1).c_str())
                    << QString::fromStdString(d);
    }
    void mergedEqualsAdapted() {
        QFETCH(QString, dir);
        const std::string base = dir.toStdString(), lora = base + "/lora";
        const auto g = moetest::read_golden(base + "/golden.safetensors");
        QTemporaryDir tmp;
        const std::string out = tmp.filePath("merged").toStdString();
        moe::LoraAdapter a = moe::load_lora_adapter(lora);
        if (!a.fused_raw.empty()) {
            moe::LoadOptions lo;
            lo.expert_format = "reference";
            auto m = moe::load_model(base, lo);
            moe::resolve_fused_experts(a, dynamic_cast<moe::DecoderModel&>(*m));
        }
        const auto report = moe::train::merge_lora_into_folder(base, a, 1.0f, out);
        QVERIFY(report.merged > 0);
        QVERIFY(std::filesystem::exists(out + "/config.json"));
        const auto adapted = logits_of(base, lora, g.input_ids);
        const auto merged = logits_of(out, "", g.input_ids);
        const auto plain = logits_of(base, "", g.input_ids);
        double scale = 0;
        for (float v : adapted) scale = std::max(scale, double(std::abs(v)));
        const double err = max_diff(merged, adapted), effect = max_diff(plain, adapted);
        qInfo("merged vs adapted %.2e, base vs adapted %.2e (of %.2f); %zu merged, %zu copied", err,
              effect, scale, report.merged, report.copied);
        QVERIFY2(effect > 10 * err, "the merge changed less than the adapter does");
        // The merged weights are rounded to the checkpoint's bf16 (2^-9 relative per weight),
        // which these random-weight networks amplify to up to 2.4 % of the logits' range
        // (deepseek_v2-s1); the adapter's own effect is 20-100x larger.
        QVERIFY(err <= 4e-2 * scale);
    }

    void refusesWhatItCannotMerge() {
        const std::string base = (moetest::data_dir() + "/hf-tiny/llama-s1").toStdString();
        moe::LoraAdapter a = moe::load_lora_adapter(base + "/lora");
        QTemporaryDir tmp;
        moe::LoraAdapter wrong = a;
        wrong.layers["model.layers.0.self_attn.nothing"] = a.layers.begin()->second;
        try {
            moe::train::merge_lora_into_folder(base, wrong, 1.0f, tmp.filePath("x").toStdString());
            QFAIL("merged an adapter layer the checkpoint does not have");
        } catch (const moe::Error& e) {
            QVERIFY2(QString(e.what()).contains("self_attn.nothing"), e.what());
        }
        try {
            moe::train::merge_lora_into_folder(base, a, 1.0f, base);
            QFAIL("merged into its own base folder");
        } catch (const moe::Error& e) {
            QVERIFY2(QString(e.what()).contains("another folder"), e.what());
        }
    }
};

QTEST_APPLESS_MAIN(TestLoraMerge)
#include "tst_lora_merge.moc"
