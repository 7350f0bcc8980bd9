// hybrid/background_job.h: the thread the hybrid decoder hands a layer's CPU experts to.
#include <QtTest>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "core/error.h"
#include "hybrid/background_job.h"
#include "hybrid/hybrid_model.h"

class TestBackgroundJob : public QObject {
    Q_OBJECT

  private slots:
    void runsOnAnotherThreadAndWaits() {
        moe::BackgroundJob job;
        std::atomic<int> value{0};
        std::thread::id ran_on;
        job.start([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            ran_on = std::this_thread::get_id();
            value = 42;
        });
        job.wait();
        QCOMPARE(value.load(), 42);
        QVERIFY(ran_on != std::this_thread::get_id());
    }

    void manyJobsInOrder() {
        moe::BackgroundJob job;
        int sum = 0;  // touched only by the job thread between start and wait
        for (int i = 1; i <= 1000; ++i) {
            job.start([&sum, i] { sum += i; });
            job.wait();
        }
        QCOMPARE(sum, 500500);
    }

    void waitWithoutJobReturns() {
        moe::BackgroundJob job;
        job.wait();
        job.wait();
    }

    void errorsComeBackOnWait() {
        moe::BackgroundJob job;
        job.start([] { throw std::runtime_error("expert kernel failed"); });
        QVERIFY_THROWS_EXCEPTION(std::runtime_error, job.wait());
        // Kept instead of thrown when asked (a CUDA host node may not throw).
        job.start([] { throw std::runtime_error("again"); });
        job.wait(false);
        QVERIFY(job.take_error() != nullptr);
        QVERIFY(job.take_error() == nullptr);
        job.start([] {});
        job.wait();  // the thread still works after errors
    }

    void streamingPolicyParses() {
        QVERIFY(moe::parse_expert_streaming("auto") == moe::ExpertStreaming::Auto);
        QVERIFY(moe::parse_expert_streaming("never") == moe::ExpertStreaming::Never);
        QVERIFY(moe::parse_expert_streaming("always") == moe::ExpertStreaming::Always);
        QVERIFY_THROWS_EXCEPTION(moe::Error, moe::parse_expert_streaming("sometimes"));
    }
};

QTEST_APPLESS_MAIN(TestBackgroundJob)
#include "tst_background_job.moc"
