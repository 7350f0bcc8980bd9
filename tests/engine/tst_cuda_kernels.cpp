// The CUDA kernels against their CPU references (tests/cuda/cuda_kernel_checks.h). Skipped in
// builds without CUDA and on machines without a GPU (CI); the GPU machine runs the same checks
// through bench/cuda_kernel_check.cpp.
#include <QtTest>
#include <random>

#include "cuda/gpu.h"
#if defined(MOE_HAVE_CUDA)
#include "fused_kernel_checks.h"
#endif

class TestCudaKernels : public QObject {
    Q_OBJECT

  private slots:
    void gpuQueryNeverThrows() {
        const auto gpus = moe::list_gpus();
        if (gpus.empty()) QVERIFY(!moe::gpu_unavailable_reason().empty());
        for (const auto& g : gpus) QVERIFY(g.total_bytes > 0 && !g.name.empty());
    }

    void basicKernels() {
#if defined(MOE_HAVE_CUDA)
        if (moe::list_gpus().empty())
            QSKIP(qPrintable(QString::fromStdString(moe::gpu_unavailable_reason())));
        const uint32_t seed = std::random_device{}();
        for (const auto& c : moe_cuda_test::run_basic_kernel_checks(seed)) {
            qInfo("%-32s max rel err %.2e (bar %.0e)", c.name.c_str(), c.error, c.bar);
            QVERIFY2(c.ok(), qPrintable(QString("%1 seed %2").arg(c.name.c_str()).arg(seed)));
        }
#else
        QSKIP("built without CUDA");
#endif
    }

    void decoderKernels() {
#if defined(MOE_HAVE_CUDA)
        if (moe::list_gpus().empty())
            QSKIP(qPrintable(QString::fromStdString(moe::gpu_unavailable_reason())));
        const uint32_t seed = std::random_device{}();
        for (const auto& c : moe_cuda_test::run_decoder_kernel_checks(seed)) {
            qInfo("%-32s max rel err %.2e (bar %.0e)", c.name.c_str(), c.error, c.bar);
            QVERIFY2(c.ok(), qPrintable(QString("%1 seed %2").arg(c.name.c_str()).arg(seed)));
        }
#else
        QSKIP("built without CUDA");
#endif
    }

    void fusedKernels() {
#if defined(MOE_HAVE_CUDA)
        if (moe::list_gpus().empty())
            QSKIP(qPrintable(QString::fromStdString(moe::gpu_unavailable_reason())));
        const uint32_t seed = std::random_device{}();
        for (const auto& c : moe_cuda_test::run_fused_kernel_checks(seed)) {
            qInfo("%-32s max rel err %.2e (bar %.0e)", c.name.c_str(), c.error, c.bar);
            QVERIFY2(c.ok(), qPrintable(QString("%1 seed %2").arg(c.name.c_str()).arg(seed)));
        }
#else
        QSKIP("built without CUDA");
#endif
    }
};

QTEST_APPLESS_MAIN(TestCudaKernels)
#include "tst_cuda_kernels.moc"
