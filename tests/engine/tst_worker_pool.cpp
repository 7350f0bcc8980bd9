// WorkerPool: parallel_for coverage and chunk alignment, work stealing under a skewed load,
// the task queue (ordering, values, first exception), nesting, shutdown with queued tasks,
// pinning, the default thread count, and cpu_info.
#include <QObject>
#include <QTest>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/cpu_info.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/worker_pool.h"

#if defined(__linux__)
#include <sched.h>
#endif

using moe::TaskHandle;
using moe::WorkerPool;

namespace {

void sleep_us(int us) {
    std::this_thread::sleep_for(std::chrono::microseconds(us));
}

// Checks one parallel_for: every index once, aligned chunk boundaries, valid worker ids
// that never run two chunks at once.
QString check_cover(WorkerPool& pool, int64_t n, int64_t grain) {
    std::vector<std::atomic<int>> hits(size_t(std::max<int64_t>(n, 1)));
    std::vector<std::atomic<int>> busy(size_t(pool.size()));
    std::atomic<int> bad_chunk{0}, bad_worker{0}, overlap{0};
    pool.parallel_for(
        n,
        [&](int64_t b, int64_t e, int w) {
            if (w < 0 || w >= pool.size()) {
                ++bad_worker;
                return;
            }
            if (busy[size_t(w)].fetch_add(1) != 0) ++overlap;
            if (b >= e || b % grain != 0 || (e % grain != 0 && e != n) || e > n) ++bad_chunk;
            for (int64_t i = b; i < e; ++i) ++hits[size_t(i)];
            busy[size_t(w)].fetch_sub(1);
        },
        grain);
    if (bad_worker) return "worker id out of range";
    if (overlap) return "two chunks ran at once on one worker id";
    if (bad_chunk) return "chunk boundary not a multiple of grain";
    for (int64_t i = 0; i < n; ++i)
        if (hits[size_t(i)] != 1)
            return QString("index %1 hit %2 times").arg(i).arg(hits[size_t(i)].load());
    return {};
}

}  // namespace

class TestWorkerPool : public QObject {
    Q_OBJECT

  private slots:
    void coversEveryIndexOnce_data() {
        QTest::addColumn<int>("threads");
        for (int t : {1, 2, 3, 5}) QTest::newRow(qPrintable(QString("%1 threads").arg(t))) << t;
    }

    void coversEveryIndexOnce() {
        QFETCH(int, threads);
        WorkerPool pool(threads);
        QCOMPARE(pool.size(), threads);
        std::mt19937 rng(1234 + threads);
        const int64_t sizes[] = {0, 1, 2, 7, 64, 1000, 4099, 100003};
        for (int64_t n : sizes) {
            for (int rep = 0; rep < 6; ++rep) {
                const int64_t grain = 1 + int64_t(rng() % (rep < 3 ? 4 : 300));
                const QString err = check_cover(pool, n, grain);
                QVERIFY2(err.isEmpty(),
                         qPrintable(QString("n=%1 grain=%2: %3").arg(n).arg(grain).arg(err)));
            }
        }
    }

    void callerDoesNotJoin() {
        moe::WorkerPoolOptions o;
        o.threads = 3;
        o.caller_joins = false;
        WorkerPool pool(o);
        QCOMPARE(pool.size(), 3);
        const QString err = check_cover(pool, 5000, 7);
        QVERIFY2(err.isEmpty(), qPrintable(err));
        // The caller is never a worker here.
        std::atomic<bool> caller_ran{false};
        const auto me = std::this_thread::get_id();
        pool.parallel_for(100, [&](int64_t, int64_t, int) {
            if (std::this_thread::get_id() == me) caller_ran = true;
        });
        QVERIFY(!caller_ran);
    }

    void workStealingBalancesSkew() {
        // Worker 0's initial range [0, 32) is 2 ms per index, the rest is free: without
        // stealing it would take 64 ms on worker 0 alone.
        WorkerPool pool(3);
        std::mutex m;
        std::set<int> heavy_workers;
        std::vector<std::atomic<int>> hits(96);
        const auto t0 = std::chrono::steady_clock::now();
        pool.parallel_for(96, [&](int64_t b, int64_t e, int w) {
            for (int64_t i = b; i < e; ++i) {
                ++hits[size_t(i)];
                if (i < 32) {
                    sleep_us(2000);
                    std::lock_guard<std::mutex> lock(m);
                    heavy_workers.insert(w);
                }
            }
        });
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
        for (auto& h : hits) QCOMPARE(h.load(), 1);
        QVERIFY2(heavy_workers.size() > 1,
                 "only one worker processed the heavy range: nothing was stolen");
        qInfo("skewed loop: %.1f ms (64 ms serial), heavy range shared by %zu workers", ms,
              heavy_workers.size());
    }

    void exceptionInLoopPropagates() {
        WorkerPool pool(3);
        std::atomic<int> ran{0};
        try {
            pool.parallel_for(1000, [&](int64_t b, int64_t e, int) {
                ran += int(e - b);
                if (b <= 500 && 500 < e) throw moe::Error("bad index 500");
            });
            QFAIL("no exception");
        } catch (const moe::Error& e) {
            QCOMPARE(std::string(e.what()), std::string("bad index 500"));
        }
        QVERIFY(ran > 0);
        // Still usable afterwards.
        const QString err = check_cover(pool, 1000, 3);
        QVERIFY2(err.isEmpty(), qPrintable(err));
    }

    void nestedParallelForRunsInline() {
        WorkerPool pool(3);
        std::vector<std::atomic<int>> hits(40 * 50);
        std::atomic<int> bad_worker{0};
        pool.parallel_for(40, [&](int64_t b, int64_t e, int w) {
            if (WorkerPool::current_worker() != w) ++bad_worker;
            for (int64_t i = b; i < e; ++i) {
                pool.parallel_for(50, [&](int64_t ib, int64_t ie, int iw) {
                    if (iw != w) ++bad_worker;  // inline: same thread, same id
                    for (int64_t j = ib; j < ie; ++j) ++hits[size_t(i * 50 + j)];
                });
                // The global API nests too (a different pool).
                moe::parallel_for(10, 1, [&](int64_t, int64_t) {});
            }
        });
        for (auto& h : hits) QCOMPARE(h.load(), 1);
        QCOMPARE(bad_worker.load(), 0);
        QCOMPARE(WorkerPool::current_worker(), -1);
    }

    void concurrentCallersAreSerialized() {
        WorkerPool pool(2);
        std::vector<std::thread> callers;
        std::atomic<int> failures{0};
        for (int c = 0; c < 3; ++c)
            callers.emplace_back([&, c] {
                for (int rep = 0; rep < 50; ++rep)
                    if (!check_cover(pool, 300 + c * 17 + rep, 1 + rep % 5).isEmpty()) ++failures;
            });
        for (auto& t : callers) t.join();
        QCOMPARE(failures.load(), 0);
    }

    void submitSyncReturnsValues() {
        WorkerPool pool(2);
        std::vector<int> order;
        int value = 0;
        std::vector<TaskHandle> handles;
        for (int i = 0; i < 10; ++i)
            handles.push_back(pool.submit([&, i] {
                order.push_back(i);  // tasks run one at a time: no lock needed
                value += i;
            }));
        pool.sync(handles.back());
        QCOMPARE(value, 45);
        QCOMPARE(order, std::vector<int>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
        pool.sync(TaskHandle{});  // no task: returns at once
    }

    void syncRethrowsFirstException() {
        WorkerPool pool(2);
        std::atomic<int> ran{0};
        const TaskHandle ok = pool.submit([&] { ++ran; });
        pool.submit([&] {
            ++ran;
            throw moe::Error("expert 7: bad block scale");
        });
        pool.submit([&] {
            ++ran;
            throw std::runtime_error("second failure");
        });
        const TaskHandle last = pool.submit([&] { ++ran; });
        pool.sync(ok);  // the failures come later: nothing to report yet
        try {
            pool.sync(last);
            QFAIL("no exception");
        } catch (const moe::Error& e) {
            QCOMPARE(std::string(e.what()), std::string("expert 7: bad block scale"));
        }
        QCOMPARE(ran.load(), 4);  // tasks after a failure still ran
        pool.sync(last);          // reported once only
        pool.wait_all();

        // wait_all reports too.
        pool.submit([] { throw std::runtime_error("late"); });
        QVERIFY_THROWS_EXCEPTION(std::runtime_error, pool.wait_all());
    }

    void syncInsideATaskIsRefused() {
        WorkerPool pool(2);
        std::atomic<bool> refused{false};
        pool.submit([&] {
            try {
                pool.sync(TaskHandle{1000});
            } catch (const moe::Error&) {
                refused = true;
            }
        });
        pool.wait_all();
        QVERIFY(refused);
    }

    void taskRunsParallelLoopAtFullWidth() {
        // A submitted task leads loops like any caller: not inline, all workers take part.
        WorkerPool pool(3);
        std::mutex m;
        std::set<int> workers;
        const TaskHandle h = pool.submit([&] {
            pool.parallel_for(60, [&](int64_t, int64_t, int w) {
                sleep_us(300);
                std::lock_guard<std::mutex> lock(m);
                workers.insert(w);
            });
        });
        pool.sync(h);
        QVERIFY2(workers.size() > 1, "the task's loop ran on one worker");
    }

    void manyTinyTasks() {
        WorkerPool pool(2);
        std::atomic<int64_t> sum{0};
        TaskHandle h;
        for (int i = 1; i <= 20000; ++i) h = pool.submit([&sum, i] { sum += i; });
        pool.sync(h);
        QCOMPARE(sum.load(), int64_t(20000) * 20001 / 2);
        // Many tiny loops too (the decode step's pattern).
        std::atomic<int64_t> total{0};
        for (int i = 0; i < 3000; ++i)
            pool.parallel_for(4, [&](int64_t b, int64_t e, int) { total += e - b; });
        QCOMPARE(total.load(), int64_t(12000));
    }

    void destructionWithPendingTasks() {
        std::atomic<int> ran{0}, loops{0};
        {
            WorkerPool pool(2);
            for (int i = 0; i < 50; ++i)
                pool.submit([&] {
                    sleep_us(200);
                    pool.parallel_for(8, [&](int64_t b, int64_t e, int) { loops += int(e - b); });
                    ++ran;
                });
            pool.submit([] { throw std::runtime_error("dropped at shutdown"); });
        }  // no sync: the destructor finishes the queue, then joins
        QCOMPARE(ran.load(), 50);
        QCOMPARE(loops.load(), 400);
        // A pool that never ran anything shuts down too.
        { WorkerPool idle(4); }
    }

    void pinnedWorkersRunOnOneCpu() {
        WorkerPool pool(2, /*pin=*/true);
        const std::vector<int>& cpus = pool.options().cpus;
        QVERIFY(!cpus.empty());
        std::atomic<int> wrong{0};
        pool.parallel_for(64, [&](int64_t, int64_t, int w) {
            sleep_us(100);
#if defined(__linux__)
            if (w == 0) return;  // the caller is not pinned
            cpu_set_t set;
            CPU_ZERO(&set);
            sched_getaffinity(0, sizeof(set), &set);
            const int want = cpus[size_t(w) % cpus.size()];
            if (CPU_COUNT(&set) != 1 || !CPU_ISSET(want, &set)) ++wrong;
#else
            (void)w;
#endif
        });
        QCOMPARE(wrong.load(), 0);
    }

    void threadCountDefaultsToPhysicalCores() {
        const QByteArray saved = qgetenv("MOE_THREADS");
        qunsetenv("MOE_THREADS");
        QCOMPARE(moe::default_thread_count(), moe::cpu_info().physical_cores);
        {
            WorkerPool pool;
            QCOMPARE(pool.size(), moe::cpu_info().physical_cores);
        }
        qputenv("MOE_THREADS", "3");
        QCOMPARE(moe::default_thread_count(), 3);
        {
            WorkerPool pool;
            QCOMPARE(pool.size(), 3);
        }
        if (saved.isNull())
            qunsetenv("MOE_THREADS");
        else
            qputenv("MOE_THREADS", saved);
        QCOMPARE(moe::parallel_threads(), moe::default_worker_pool().size());
    }

    void setParallelThreadsResizes() {
        const int before = moe::parallel_threads();
        moe::set_parallel_threads(3);
        QCOMPARE(moe::parallel_threads(), 3);
        std::vector<std::atomic<int>> hits(1000);
        std::atomic<int> unaligned{0};
        moe::parallel_for(1000, 16, [&](int64_t b, int64_t e) {
            if (b % 16 != 0) ++unaligned;
            for (int64_t i = b; i < e; ++i) ++hits[size_t(i)];
        });
        for (auto& h : hits) QCOMPARE(h.load(), 1);
        QCOMPARE(unaligned.load(), 0);
        QVERIFY_THROWS_EXCEPTION(moe::Error, moe::parallel_for(100, 1, [](int64_t b, int64_t) {
                                     if (b == 0) throw moe::Error("first chunk");
                                 }));
        moe::set_parallel_threads(before);
        QCOMPARE(moe::parallel_threads(), before);
    }

    void cpuInfoIsSane() {
        const moe::CpuInfo& info = moe::cpu_info();
        QVERIFY(info.physical_cores >= 1);
        QVERIFY(info.logical_cores >= info.physical_cores);
        QCOMPARE(int(info.cpus.size()), info.logical_cores);
        QVERIFY(info.numa_nodes >= 1 && info.packages >= 1);
        QVERIFY(!info.model_name.empty());
        for (size_t i = 0; i < info.cpus.size(); ++i) {
            QVERIFY(info.cpus[i].core >= 0 && info.cpus[i].core < info.physical_cores);
            if (i) QVERIFY(info.cpus[i - 1].id < info.cpus[i].id);
        }
        const moe::CpuFeatures& f = info.features;
        if (f.avx512bw || f.avx512vl || f.avx512_bf16 || f.avx512_vnni) QVERIFY(f.avx512f);
        if (f.amx_bf16 || f.amx_int8) QVERIFY(f.amx_tile);
        const std::string summary = moe::cpu_summary();
        QVERIFY(summary.find(info.model_name) != std::string::npos);
        QVERIFY(summary.find("physical") != std::string::npos);
        qInfo("%s", summary.c_str());

        std::vector<int> all;
        for (const auto& c : info.cpus) all.push_back(c.id);
        const std::vector<int> ordered = moe::order_by_core(all);
        QCOMPARE(std::set<int>(ordered.begin(), ordered.end()),
                 std::set<int>(all.begin(), all.end()));
        std::set<int> first_cores;  // the first physical_cores entries are on distinct cores
        for (int i = 0; i < info.physical_cores; ++i)
            for (const auto& c : info.cpus)
                if (c.id == ordered[size_t(i)]) first_cores.insert(c.core);
        QCOMPARE(int(first_cores.size()), info.physical_cores);
    }

    void parseCpuList() {
        QCOMPARE(moe::parse_cpu_list("0-3,8,10-11"), std::vector<int>({0, 1, 2, 3, 8, 10, 11}));
        QCOMPARE(moe::parse_cpu_list(" 5 \n"), std::vector<int>({5}));
        QCOMPARE(moe::parse_cpu_list(""), std::vector<int>());
        QVERIFY_THROWS_EXCEPTION(moe::Error, moe::parse_cpu_list("3-1"));
        QVERIFY_THROWS_EXCEPTION(moe::Error, moe::parse_cpu_list("a,b"));
        QVERIFY_THROWS_EXCEPTION(moe::Error, moe::parse_cpu_list("1-2x"));
    }
};

QTEST_GUILESS_MAIN(TestWorkerPool)
#include "tst_worker_pool.moc"
