// Expert deferral (DecoderModel::deferred_experts): the split of each token's experts, exactness
// when off, and its accuracy effect on every hf-tiny fixture against the transformers goldens
// (printed: the figures docs/benchmarks.md quotes).
#include <QtTest>

#include <cmath>

#include "core/error.h"
#include "golden.h"
#include "model/decoder_model.h"
#include "model/moe_block.h"
#include "test_paths.h"

namespace {

std::vector<int32_t> greedy(moe::Model& m, const std::vector<int32_t>& prompt, size_t n) {
    moe::KvCache cache = m.new_cache();
    std::vector<float> logits;
    m.forward(prompt, cache, logits, false);
    std::vector<int32_t> ids;
    while (ids.size() < n) {
        ids.push_back(int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin()));
        if (ids.size() < n) m.forward(std::vector<int32_t>{ids.back()}, cache, logits, false);
    }
    return ids;
}

}  // namespace

class TestExpertDeferral : public QObject {
    Q_OBJECT

  private slots:
    void splitKeepsBestExperts() {
        moe::Routing r{
            2, 4, {7, 1, 5, 3, 0, 2, 4, 6}, {0.1f, 0.4f, 0.2f, 0.3f, 0.5f, 0.5f, 0.0f, 0.25f}};
        moe::Routing now, later;
        moe::split_routing(r, 1, now, later);
        QCOMPARE(now.k, int64_t(3));
        QCOMPARE(later.k, int64_t(1));
        // token 0: lowest weight 0.1 (expert 7) deferred; routing order kept for the rest
        QCOMPARE(now.ids, (std::vector<int32_t>{1, 5, 3, 0, 2, 6}));
        QCOMPARE(later.ids, (std::vector<int32_t>{7, 4}));
        QCOMPARE(later.weights, (std::vector<float>{0.1f, 0.0f}));
        moe::split_routing(r, 2, now, later);
        // token 1: 0.0 (expert 4) and 0.25 (expert 6); ties between 0.5s stay immediate
        QCOMPARE(later.ids, (std::vector<int32_t>{7, 5, 4, 6}));
        moe::split_routing(r, 0, now, later);
        QCOMPARE(now.ids, r.ids);
        QCOMPARE(later.k, int64_t(0));
    }

    void rejectsDeferringEveryExpert() {
        moe::LoadOptions o;
        o.deferred_experts = 99;
        const auto dir = (moetest::data_dir() + "/hf-tiny/qwen3_moe-s1").toStdString();
        QVERIFY_THROWS_EXCEPTION(moe::Error, moe::load_model(dir, o));
    }

    void accuracyEffect_data() {
        QTest::addColumn<QString>("dir");
        for (const auto& d :
             moetest::fixture_dirs((moetest::data_dir() + "/hf-tiny").toStdString()))
            QTest::newRow(d.substr(d.find_last_of('/') + 1).c_str()) << QString::fromStdString(d);
    }
    void accuracyEffect() {
        QFETCH(QString, dir);
        const auto g = moetest::read_golden(dir.toStdString() + "/golden.safetensors");
        moe::LoadOptions o;
        o.bf16_rope_frequencies = true;  // how the goldens were made
        auto model = moe::load_model(dir.toStdString(), o);
        auto& dm = dynamic_cast<moe::DecoderModel&>(*model);
        const auto exact = moetest::prompt_logits(*model, g.input_ids);
        if (model->info().experts_per_token < 2 || model->info().moe_layers < 1)
            QSKIP("no MoE layer with two or more experts per token");
        dm.deferred_experts = 0;
        QCOMPARE(moetest::prompt_logits(*model, g.input_ids), exact);  // off = exact
        const bool defers = [&] {  // a MoE layer followed by another layer
            for (size_t i = 0; i + 1 < dm.layers.size(); ++i)
                if (dynamic_cast<const moe::MoeBlock*>(dm.layers[i].ffn.get())) return true;
            return false;
        }();
        for (int64_t d = 1; d < model->info().experts_per_token; ++d) {
            dm.deferred_experts = d;
            const auto got = moetest::prompt_logits(*model, g.input_ids);
            for (float v : got) QVERIFY(std::isfinite(v));
            if (defers) QVERIFY(got != exact);
            const double rel = moetest::relative_max_error(got, g.logits);
            const auto ids = greedy(*model, g.input_ids, g.greedy_ids.size());
            size_t same = 0;
            while (same < ids.size() && ids[same] == g.greedy_ids[same]) ++same;
            qInfo("deferred %lld of %lld: logits error %.3e (exact %.1e), greedy ids %zu/%zu",
                  (long long)d, (long long)model->info().experts_per_token, rel,
                  moetest::relative_max_error(exact, g.logits), same, ids.size());
        }
    }
};

QTEST_APPLESS_MAIN(TestExpertDeferral)
#include "tst_expert_deferral.moc"
