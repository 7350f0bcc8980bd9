// The engine against transformers: every fixture under tests/data/hf-tiny (the shared hf-tiny
// set) and tests/data/hf-extra (other seeds, shapes, YaRN/llama3 rope, FP8 blocks, shards;
// made by tools/make_hf_fixtures.py) must reproduce the reference logits at every position
// (max|diff| / max|golden| <= 2e-3) and the 20 greedy ids with the KV cache.
//
// The references were computed in float32 by a transformers model that had been cast to bf16,
// which rounds its rotary inv_freq buffer to bf16; the engine reproduces that with
// LoadOptions::bf16_rope_frequencies (its default is exact fp32 frequencies, as
// from_pretrained and llama.cpp use).
#include <QDir>
#include <QtTest>

#include "golden.h"
#include "model/generator.h"
#include "model/model.h"
#include "test_paths.h"

namespace {

using moetest::data_dir;

// How the goldens were made: see the file comment.
moe::LoadOptions reference_options() {
    moe::LoadOptions o;
    o.bf16_rope_frequencies = true;
    return o;
}

}  // namespace

class HfFixtures : public QObject {
    Q_OBJECT

    void add_rows() {
        QTest::addColumn<QString>("dir");
        int n = 0;
        for (const char* set : {"hf-tiny", "hf-extra"}) {
            for (const auto& d : moetest::fixture_dirs((data_dir() + "/" + set).toStdString())) {
                const QString path = QString::fromStdString(d);
                QTest::newRow(qPrintable(QString(set) + "/" + QDir(path).dirName())) << path;
                ++n;
            }
        }
        QVERIFY2(n >= 9, "expected at least the nine hf-tiny fixtures in tests/data");
    }

  private slots:
    void logitsMatchTransformers_data() { add_rows(); }
    void logitsMatchTransformers() {
        QFETCH(QString, dir);
        const auto g = moetest::read_golden(dir.toStdString() + "/golden.safetensors");
        auto model = moe::load_model(dir.toStdString(), reference_options());
        QCOMPARE(model->info().vocab_size, g.vocab);
        const double rel =
            moetest::relative_max_error(moetest::prompt_logits(*model, g.input_ids), g.logits);
        QVERIFY2(rel <= 2e-3, qPrintable(QString("relative error %1").arg(rel)));
    }

    void greedyIdsMatchTransformers_data() { add_rows(); }
    void greedyIdsMatchTransformers() {
        QFETCH(QString, dir);
        const auto g = moetest::read_golden(dir.toStdString() + "/golden.safetensors");
        auto model = moe::load_model(dir.toStdString(), reference_options());
        moe::GenerateRequest req;
        req.prompt = g.input_ids;
        req.max_new_tokens = int(g.greedy_ids.size());
        req.sampling.greedy = true;
        moe::KvCache cache = model->new_cache();
        const auto result = moe::generate(*model, cache, req);
        QCOMPARE(result.tokens, g.greedy_ids);
    }

    // Prefill in pieces through the cache gives the same logits as one batch.
    void chunkedPrefillEqualsBatch_data() { add_rows(); }
    void chunkedPrefillEqualsBatch() {
        QFETCH(QString, dir);
        const auto g = moetest::read_golden(dir.toStdString() + "/golden.safetensors");
        auto model = moe::load_model(dir.toStdString());
        const auto batch = moetest::prompt_logits(*model, g.input_ids);
        moe::KvCache cache = model->new_cache();
        std::vector<float> pieces, part;
        const size_t split = g.input_ids.size() / 3;
        const std::vector<int32_t> a(g.input_ids.begin(), g.input_ids.begin() + split);
        model->forward(a, cache, part, true);
        pieces = part;
        for (size_t i = split; i < g.input_ids.size(); ++i) {
            model->forward(std::vector<int32_t>{g.input_ids[i]}, cache, part, true);
            pieces.insert(pieces.end(), part.begin(), part.end());
        }
        const double rel = moetest::relative_max_error(pieces, batch);
        QVERIFY2(rel <= 1e-5, qPrintable(QString("relative error %1").arg(rel)));
    }
};

QTEST_APPLESS_MAIN(HfFixtures)
#include "tst_hf_fixtures.moc"
