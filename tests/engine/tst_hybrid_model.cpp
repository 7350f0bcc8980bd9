// The hybrid CPU/GPU model. Everywhere: a build without CUDA, or a machine without a GPU,
// refuses a GPU placement with an error that says why. With a GPU (skipped in CI): every
// hf-tiny fixture through the GPU path with four expert placements and two precisions against
// the transformers goldens (tests/cuda/hybrid_checks.h; bench/hybrid_check.cpp runs the same
// on the GPU machine).
#include <QtTest>
#include <random>

#include "core/error.h"
#include "cuda/gpu.h"
#include "golden.h"
#include "hybrid/hybrid_model.h"
#include "hybrid/placement_planner.h"
#include "model/decoder_model.h"
#include "test_paths.h"
#if defined(MOE_HAVE_CUDA)
#include "hybrid_checks.h"
#endif

class TestHybridModel : public QObject {
    Q_OBJECT

    static std::string fixture(const char* name) {
        return (moetest::data_dir() + "/hf-tiny/" + name).toStdString();
    }

  private slots:
    void refusesWithoutGpu() {
        if (!moe::list_gpus().empty()) QSKIP("a GPU is present");
        auto model = moe::load_model(fixture("qwen3_moe-s1"));
        auto& dm = dynamic_cast<moe::DecoderModel&>(*model);
        moe::PlanOptions o;
        o.gpu_budget = uint64_t(1) << 30;
        const moe::Placement p = moe::plan_placement(moe::measure_footprint(dm), o).placement;
        QVERIFY(p.uses_gpu());
        try {
            moe::make_hybrid_model(std::move(model), p);
            QFAIL("a GPU placement was accepted without a GPU");
        } catch (const moe::Error& e) {
            const QString msg = QString::fromUtf8(e.what());
            QVERIFY2(msg.contains("CUDA") || msg.contains("GPU"), qPrintable(msg));
        }
    }

    void goldensThroughGpu_data() {
        QTest::addColumn<QString>("dir");
        for (const auto& d :
             moetest::fixture_dirs((moetest::data_dir() + "/hf-tiny").toStdString()))
            QTest::newRow(d.substr(d.find_last_of('/') + 1).c_str()) << QString::fromStdString(d);
    }
    void goldensThroughGpu() {
#if defined(MOE_HAVE_CUDA)
        if (moe::list_gpus().empty())
            QSKIP(qPrintable(QString::fromStdString(moe::gpu_unavailable_reason())));
        QFETCH(QString, dir);
        const uint32_t seed = std::random_device{}();
        auto results = moe_hybrid_test::run_hybrid_checks(dir.toStdString(), seed);
        for (auto& c : moe_hybrid_test::run_deferral_checks(dir.toStdString(), seed))
            results.push_back(c);
        for (const auto& c : results) {
            qInfo("%-32s logits %.2e ids %d/%d %s", c.name.c_str(), c.logits_error, c.ids_matching,
                  c.ids_total, c.note.c_str());
            QVERIFY2(
                c.ok(),
                qPrintable(
                    QString("%1 (seed %2) %3").arg(c.name.c_str()).arg(seed).arg(c.note.c_str())));
        }
#else
        QSKIP("built without CUDA");
#endif
    }
};

QTEST_APPLESS_MAIN(TestHybridModel)
#include "tst_hybrid_model.moc"
