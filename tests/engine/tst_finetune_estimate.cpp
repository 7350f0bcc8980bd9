// The fine-tune estimate (api/finetune_estimate.h) against figures worked by hand from
// hf-tiny/qwen3_moe-s1's config: hidden 96, 4 heads of 32, 2 KV heads, 3 layers (layer 0 a
// dense MLP of 128, layers 1-2 MoE with 8 experts of 48, top-2, no shared expert), vocab
// 1088, bf16; and the machine inputs read from a store's earlier run of the model.
#include <QDir>
#include <QTemporaryDir>
#include <QtTest>

#include "api/finetune_estimate.h"
#include "store/training_runs.h"
#include "test_paths.h"

class FinetuneEstimateTest : public QObject {
    Q_OBJECT

    std::string model_;
    moe::FinetuneShapes shapes_;

    moe::FinetuneSpec spec() const {
        moe::FinetuneSpec s;
        s.model = model_;
        s.rank = 8;
        s.cutoff = 64;
        return s;  // targets q_proj, k_proj, v_proj, o_proj
    }

  private slots:
    void initTestCase() {
        model_ = (moetest::data_dir() + "/hf-tiny/qwen3_moe-s1").toStdString();
        if (!QFile::exists(QString::fromStdString(model_ + "/model.safetensors")))
            QSKIP("hf-tiny fixtures absent");
        shapes_ = moe::load_finetune_shapes(model_);
    }

    void shapes() {
        QCOMPARE(shapes_.hidden, int64_t(96));
        QCOMPARE(shapes_.vocab, int64_t(1088));
        // 579936 parameters, all bf16.
        QCOMPARE(shapes_.params_total, int64_t(579936));
        QCOMPARE(shapes_.weight_bytes, uint64_t(2 * 579936));
        // Minus 6 unchosen experts of 3 x 48 x 96 in each of the 2 MoE layers.
        QCOMPARE(shapes_.params_active, int64_t(579936 - 2 * 6 * 13824));
        // (in + out) x 3 layers: q 96+128, k and v 96+64, o 128+96.
        QCOMPARE(shapes_.linear_io.at("q_proj"), int64_t(3 * 224));
        QCOMPARE(shapes_.linear_io.at("k_proj"), int64_t(3 * 160));
        QCOMPARE(shapes_.linear_io.at("v_proj"), int64_t(3 * 160));
        QCOMPARE(shapes_.linear_io.at("o_proj"), int64_t(3 * 224));
        // Layer 0's MLP only (experts and routers apart): gate and up 96+128, down 128+96.
        QCOMPARE(shapes_.linear_io.at("gate_proj"), int64_t(224));
        QCOMPARE(shapes_.linear_io.at("up_proj"), int64_t(224));
        QCOMPARE(shapes_.linear_io.at("down_proj"), int64_t(224));
        QVERIFY(!shapes_.linear_io.count("gate"));
        // 2 layers x 8 experts x ((96 + 2 x 48) + (48 + 96)); routers 2 x (96 + 8).
        QCOMPARE(shapes_.experts_io, int64_t(2 * 8 * 336));
        QCOMPARE(shapes_.router_io, int64_t(2 * 104));
        QCOMPARE(shapes_.layers.size(), size_t(3));
        // Residual 2 x 96; attention 96 + 4 x 128 + 5 x 64; MLP 96 + 3 x 128; MoE 96 + 8 +
        // 2 x ((96 + 3 x 48) + 96).
        QCOMPARE(shapes_.layers[0].tape_values, int64_t(192 + 928 + 480));
        QCOMPARE(shapes_.layers[1].tape_values, int64_t(192 + 928 + 776));
        QCOMPARE(shapes_.layers[2].heads, int64_t(4));
        QCOMPARE(shapes_.layers[2].attention_width, int64_t(128 + 128));
    }

    // Every architecture's fixture measures: attention layers found, experts on MoE layers.
    void everyArchitecture() {
        const QDir dir(moetest::data_dir() + "/hf-tiny");
        int measured = 0;
        for (const QString& name : dir.entryList(QDir::Dirs | QDir::NoDotAndDotDot)) {
            const moe::FinetuneShapes s =
                moe::load_finetune_shapes(dir.filePath(name).toStdString());
            int64_t attention = 0;
            for (const char* n : {"q_proj", "q_a_proj", "kv_a_proj_with_mqa", "o_proj"})
                attention += s.linear_io.count(n) ? s.linear_io.at(n) : 0;
            QVERIFY2(attention > 0, qPrintable(name));
            QVERIFY2(s.experts_io > 0 || name.startsWith("llama"), qPrintable(name));
            for (const auto& l : s.layers)
                QVERIFY2(l.tape_values > 0 && l.heads > 0, qPrintable(name));
            const moe::FinetuneEstimate e = moe::estimate_finetune(s, spec(), {});
            QVERIFY2(e.activation_bytes > 0 && e.weight_bytes > 0, qPrintable(name));
            ++measured;
        }
        QVERIFY(measured >= 9);
    }

    void memory() {
        moe::EstimateInputs in;
        in.ram_available = uint64_t(1) << 30;
        const moe::FinetuneEstimate e = moe::estimate_finetune(shapes_, spec(), in);
        // Rank 8 x (672 + 480 + 480 + 672).
        QCOMPARE(e.adapter_params, int64_t(18432));
        QCOMPARE(e.adapter_bytes, uint64_t(4 * 18432));
        QCOMPARE(e.optimizer_bytes, uint64_t(8 * 18432));
        QCOMPARE(e.gradient_bytes, uint64_t(16 * 18432));
        // 64 tokens x 4 bytes x: layer 0 (1600 + 4 heads x 64), layers 1-2 (1896 + 256) each,
        // and the head's 2 x 1088 + 5 x 96.
        const uint64_t layers = 64 * 4 * (1856 + 2 * 2152), head = 64 * 4 * (2176 + 480);
        QCOMPARE(e.activation_bytes, layers + head);
        QCOMPARE(e.working_bytes, 28 * 18432 + layers + head);
        QCOMPARE(e.ram_bytes, e.working_bytes + 1159872);
        QCOMPARE(e.vram_bytes, uint64_t(0));
        QVERIFY(e.fits);
        QVERIFY2(QString::fromStdString(e.verdict).startsWith("fits this machine"),
                 e.verdict.c_str());

        // The memory each target group adds, selected or not.
        QCOMPARE(e.targets.size(), size_t(4));
        QCOMPARE(e.targets[0].group, std::string("attention"));
        QCOMPARE(e.targets[0].params, int64_t(18432));
        QVERIFY(e.targets[0].selected);
        QCOMPARE(e.targets[1].group, std::string("mlp"));
        QCOMPARE(e.targets[1].params, int64_t(8 * 672));
        QVERIFY(!e.targets[1].selected);
        QCOMPARE(e.targets[2].group, std::string("experts"));
        QCOMPARE(e.targets[2].params, int64_t(8 * 5376));
        QCOMPARE(e.targets[2].bytes, uint64_t(28 * 8 * 5376));
        QCOMPARE(e.targets[3].params, int64_t(8 * 208));

        // Experts too: their parameters join the adapter.
        moe::FinetuneSpec s = spec();
        s.targets.push_back("experts");
        QCOMPARE(moe::estimate_finetune(shapes_, s, in).adapter_params, int64_t(18432 + 43008));

        // Gradient checkpointing: each layer's input, then the largest layer's tape.
        s = spec();
        s.gradient_checkpointing = true;
        QCOMPARE(moe::estimate_finetune(shapes_, s, in).activation_bytes,
                 uint64_t(3 * 96 * 64 * 4) + 64 * 4 * 2152 + head);
    }

    void verdicts() {
        moe::EstimateInputs in;
        const moe::FinetuneEstimate need = moe::estimate_finetune(shapes_, spec(), in);
        QVERIFY(QString::fromStdString(need.verdict).contains("unknown"));
        in.ram_available = need.working_bytes + 1;  // the weights would come from disk
        const moe::FinetuneEstimate disk = moe::estimate_finetune(shapes_, spec(), in);
        QVERIFY(!disk.fits && disk.fits_working);
        QVERIFY2(QString::fromStdString(disk.verdict).startsWith("fits only from disk"),
                 disk.verdict.c_str());
        in.ram_available = need.working_bytes / 2;
        const moe::FinetuneEstimate no = moe::estimate_finetune(shapes_, spec(), in);
        QVERIFY(!no.fits && !no.fits_working);
        QVERIFY2(QString::fromStdString(no.verdict).startsWith("does not fit"), no.verdict.c_str());
        in.vram_total = uint64_t(80) << 30;
        QVERIFY(QString::fromStdString(moe::estimate_finetune(shapes_, spec(), in).verdict)
                    .contains("80.0 GiB of GPU memory left unused"));
    }

    void time() {
        moe::EstimateInputs in;
        in.sequences = 12;
        // Per token: 2 x 2 FLOPs x (414048 active - 104448 embedding) frozen parameters, and
        // 3 x 3 layers x (128 + 128) x 64 for the attention products; 64 tokens a step.
        const double flops = 64.0 * (4.0 * 309600 + 3.0 * 3 * 256 * 64);
        moe::FinetuneEstimate e = moe::estimate_finetune(shapes_, spec(), in);
        QCOMPARE(e.flops_per_step, flops);
        QCOMPARE(e.step_seconds, flops / 20e9);
        QCOMPARE(e.steps, int64_t(12));
        QVERIFY(QString::fromStdString(e.time_basis).startsWith("assumed 20 GFLOP/s"));
        // Calibrated weight reads bound it below: 3 passes would be checkpointing; here 2
        // passes over all the weights (a 64-token sequence reaches every expert).
        in.weight_bytes_per_s = 1e6;
        e = moe::estimate_finetune(shapes_, spec(), in);
        QCOMPARE(e.step_seconds, 2.0 * 1159872 / 1e6);
        QVERIFY(QString::fromStdString(e.time_basis).contains("calibrated"));
        // A measured rate wins: 64 tokens at 1000 tokens/s; 2 sequences a step halves steps.
        in.measured_tokens_per_s = 1000;
        in.measured_from = "run 1";
        moe::FinetuneSpec s = spec();
        s.grad_accum = 2;
        e = moe::estimate_finetune(shapes_, s, in);
        QCOMPARE(e.step_seconds, 0.128);
        QCOMPARE(e.steps, int64_t(6));
        QCOMPARE(e.total_seconds, 6 * 0.128);
        QVERIFY(QString::fromStdString(e.summary()).contains("1000 tokens/s in run 1"));
    }

    // The newest run of the same model with measured steps gives the rate (their median).
    void measuredFromTheStore() {
        QTemporaryDir dir;
        const std::string db = dir.filePath("runs.db").toStdString();
        {
            moe::TrainingRunStore store(db);
            const int64_t other = store.start_run("another-model", "d", "o", "{}");
            const int64_t mine = store.start_run(model_, "d", "o", "{}");
            int64_t step = 0;
            for (double tps : {100.0, 300.0, 200.0}) {
                moe::TrainingMetricsRow m;
                m.step = ++step;
                m.tokens_per_s = tps;
                store.add_metrics(mine, m);
                m.tokens_per_s = 5 * tps;
                store.add_metrics(other, m);
            }
        }
        const moe::EstimateInputs in = moe::machine_estimate_inputs(spec(), db);
        QCOMPARE(in.measured_tokens_per_s, 200.0);
        QCOMPARE(in.measured_from, std::string("run 2"));
        QVERIFY(in.ram_available > 0);
        QCOMPARE(in.weight_bytes_per_s, 0.0);  // no machine_rates.json beside it
    }
};

QTEST_APPLESS_MAIN(FinetuneEstimateTest)
#include "tst_finetune_estimate.moc"
