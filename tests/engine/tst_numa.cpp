// NUMA: the detected topology, virtual partitions (the multi-node path on a one-node box),
// split_range, node-local allocation and NumaPools running loops on every node at once.
#include <QObject>
#include <QTest>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/cpu_info.h"
#include "core/error.h"
#include "core/numa.h"

#if defined(__linux__)
#include <sched.h>
#endif

using moe::NumaPools;
using moe::NumaTopology;

namespace {

std::set<int> process_cpus() {
    std::set<int> s;
    for (const auto& c : moe::cpu_info().cpus) s.insert(c.id);
    return s;
}

// Every CPU in exactly one node, and nothing else.
QString check_partition(const NumaTopology& t) {
    std::multiset<int> seen;
    for (const auto& node : t.nodes()) {
        if (node.cpus.empty()) return "a node without CPUs";
        if (node.physical_cores < 1) return "a node without cores";
        seen.insert(node.cpus.begin(), node.cpus.end());
    }
    const std::set<int> unique(seen.begin(), seen.end());
    if (unique.size() != seen.size()) return "a CPU in two nodes";
    if (unique != process_cpus()) return "the nodes do not cover the process's CPUs";
    return {};
}

}  // namespace

class TestNuma : public QObject {
    Q_OBJECT

  private slots:
    void initTestCase() {
        // Before anything asks for the process-wide topology.
        qputenv("MOE_NUMA_VIRTUAL", "2");
    }

    void detectedTopologyIsSane() {
        const NumaTopology t = NumaTopology::detect();
        QVERIFY(t.node_count() >= 1);
        QVERIFY(!t.is_virtual());
        QCOMPARE(t.node_count(), moe::cpu_info().numa_nodes);
        for (const auto& node : t.nodes()) QVERIFY(node.os_node >= 0);
        const QString err = check_partition(t);
        QVERIFY2(err.isEmpty(), qPrintable(err));
        int cores = 0;
        for (const auto& node : t.nodes()) cores += node.physical_cores;
        QCOMPARE(cores, moe::cpu_info().physical_cores);
        qInfo("%s (libnuma %s)", t.describe().c_str(), moe::numa_supported() ? "yes" : "no");
    }

    void envForcesVirtualNodes() {
        const NumaTopology& t = moe::numa_topology();
        QCOMPARE(t.node_count(), 2);
        QVERIFY(t.is_virtual());
        QVERIFY(t.describe().find("virtual") != std::string::npos);
    }

    void virtualPartitionsAreDisjoint() {
        const int cores = moe::cpu_info().physical_cores;
        for (int parts = 1; parts <= cores; ++parts) {
            const NumaTopology t = NumaTopology::virtual_nodes(parts);
            QCOMPARE(t.node_count(), parts);
            QVERIFY(t.is_virtual());
            for (const auto& node : t.nodes()) QCOMPARE(node.os_node, -1);
            const QString err = check_partition(t);
            QVERIFY2(err.isEmpty(), qPrintable(QString("%1 parts: %2").arg(parts).arg(err)));
            int sum = 0;
            for (const auto& node : t.nodes()) sum += node.physical_cores;
            QCOMPARE(sum, cores);
        }
        // More partitions than cores: each still gets CPUs (shared), all of them real.
        const NumaTopology many = NumaTopology::virtual_nodes(cores + 3);
        QCOMPARE(many.node_count(), cores + 3);
        const std::set<int> all = process_cpus();
        for (const auto& node : many.nodes()) {
            QVERIFY(!node.cpus.empty());
            for (int cpu : node.cpus) QVERIFY(all.count(cpu));
        }
        QVERIFY_THROWS_EXCEPTION(moe::Error, NumaTopology::virtual_nodes(0));
    }

    void splitRange_data() {
        QTest::addColumn<qint64>("n");
        QTest::addColumn<int>("parts");
        QTest::addColumn<qint64>("align");
        QTest::newRow("even") << qint64(1024) << 2 << qint64(64);
        QTest::newRow("ragged tail") << qint64(1000) << 3 << qint64(64);
        QTest::newRow("moe_intermediate 1408 / 4 @ 128") << qint64(1408) << 4 << qint64(128);
        QTest::newRow("quant block 256") << qint64(18944) << 2 << qint64(256);
        QTest::newRow("fewer blocks than parts") << qint64(100) << 4 << qint64(64);
        QTest::newRow("empty") << qint64(0) << 3 << qint64(64);
        QTest::newRow("align 1") << qint64(7) << 7 << qint64(1);
        QTest::newRow("one part") << qint64(77) << 1 << qint64(32);
    }

    void splitRange() {
        QFETCH(qint64, n);
        QFETCH(int, parts);
        QFETCH(qint64, align);
        const auto ranges = moe::split_range(n, parts, align);
        QCOMPARE(int(ranges.size()), parts);
        int64_t expect = 0, smallest = n, largest = 0;
        for (const auto& [b, e] : ranges) {
            QCOMPARE(b, expect);
            QVERIFY(e >= b);
            QVERIFY(b % align == 0);
            QVERIFY(e % align == 0 || e == n);
            expect = e;
            smallest = std::min(smallest, e - b);
            largest = std::max(largest, e - b);
        }
        QCOMPARE(expect, int64_t(n));
        QVERIFY(largest - smallest <= align);  // balanced to within one block
    }

    void splitRangeRejectsBadArguments() {
        QVERIFY_THROWS_EXCEPTION(moe::Error, moe::split_range(-1, 2, 64));
        QVERIFY_THROWS_EXCEPTION(moe::Error, moe::split_range(10, 0, 64));
        QVERIFY_THROWS_EXCEPTION(moe::Error, moe::split_range(10, 2, 0));
    }

    void allocationOnNodeIsWritable() {
        std::vector<int> nodes = {-1, 999};  // ordinary memory, a node that does not exist
        const NumaTopology topo = NumaTopology::detect();
        for (const auto& node : topo.nodes()) nodes.push_back(node.os_node);
        for (int node : nodes) {
            for (size_t bytes : {size_t(1), size_t(4096 + 3), size_t(3) << 20}) {
                auto* p = static_cast<unsigned char*>(moe::numa_alloc_on_node(bytes, node));
                QVERIFY(p != nullptr);
                QCOMPARE(reinterpret_cast<uintptr_t>(p) % 64, uintptr_t(0));
                QCOMPARE(int(p[0]), 0);  // zeroed
                QCOMPARE(int(p[bytes - 1]), 0);
                std::memset(p, 0xAB, bytes);
                QCOMPARE(int(p[bytes / 2]), 0xAB);
                moe::numa_free(p, bytes);
            }
        }
        QVERIFY(moe::numa_alloc_on_node(0, 0) == nullptr);
        moe::numa_free(nullptr, 0);

        moe::NumaBuffer a(1 << 20, 0);
        a.as<float>()[1000] = 3.5f;
        moe::NumaBuffer b = std::move(a);
        QVERIFY(a.data() == nullptr);
        QCOMPARE(b.as<float>()[1000], 3.5f);
        QCOMPARE(b.size(), size_t(1) << 20);
    }

    void numaPoolsRunEveryNode() {
        NumaPools pools(NumaTopology::virtual_nodes(2));
        QCOMPARE(pools.node_count(), 2);
        QCOMPARE(pools.worker_offset(0), 0);
        QCOMPARE(pools.worker_offset(1), pools.pool(0).size());
        QCOMPARE(pools.total_workers(), pools.pool(0).size() + pools.pool(1).size());

        const int64_t n = 1000;
        std::vector<std::atomic<int>> hits(size_t(2 * n));
        std::atomic<int> bad_worker{0};
        std::mutex m;
        std::set<std::thread::id> threads;
        pools.parallel_for(
            n,
            [&](int node, int64_t b, int64_t e, int w) {
                if (w < 0 || w >= pools.pool(node).size()) ++bad_worker;
                for (int64_t i = b; i < e; ++i) ++hits[size_t(node * n + i)];
                std::lock_guard<std::mutex> lock(m);
                threads.insert(std::this_thread::get_id());
            },
            8);
        for (auto& h : hits) QCOMPARE(h.load(), 1);
        QCOMPARE(bad_worker.load(), 0);
        QVERIFY(threads.size() >= 2);  // each node's own workers
        QVERIFY(!threads.count(std::this_thread::get_id()));

        // The expert operator's pattern: each node computes its slice of the intermediate dim.
        const auto slices = moe::split_range(1408, pools.node_count(), 64);
        std::vector<std::atomic<int>> cols(1408);
        pools.parallel_for(4, [&](int node, int64_t b, int64_t e, int) {
            for (int64_t expert = b; expert < e; ++expert)
                for (int64_t c = slices[size_t(node)].first; c < slices[size_t(node)].second; ++c)
                    ++cols[size_t(c)];
        });
        for (auto& c : cols) QCOMPARE(c.load(), 4);
    }

    void numaPoolsErrorsTasksAndNesting() {
        NumaPools pools(NumaTopology::virtual_nodes(2));
        try {
            pools.parallel_for(100, [](int node, int64_t b, int64_t e, int) {
                if (node == 1 && b <= 50 && 50 < e) throw moe::Error("node 1 failed");
            });
            QFAIL("no exception");
        } catch (const moe::Error& e) {
            QCOMPARE(std::string(e.what()), std::string("node 1 failed"));
        }

        std::atomic<int> total{0}, nested{0}, chunks{0};
        const moe::TaskHandle h = pools.submit([&] {
            pools.parallel_for(64, [&](int, int64_t b, int64_t e, int) {
                total += int(e - b);
                ++chunks;
                pools.parallel_for(
                    3, [&](int, int64_t nb, int64_t ne, int) { nested += int(ne - nb); });
            });
        });
        pools.sync(h);
        QCOMPARE(total.load(), 128);
        // Nested: inline, every node's [0, 3) on the calling worker.
        QCOMPARE(nested.load(), chunks.load() * 2 * 3);
        pools.submit([] { throw std::runtime_error("async failure"); });
        QVERIFY_THROWS_EXCEPTION(std::runtime_error, pools.wait_all());
    }

    void pinnedNumaPoolsStayOnTheirNode() {
        const NumaTopology topo = NumaTopology::virtual_nodes(2);
        NumaPools pools(topo, /*pin=*/true);
        std::atomic<int> wrong{0};
        pools.parallel_for(32, [&](int node, int64_t, int64_t, int) {
            std::this_thread::sleep_for(std::chrono::microseconds(100));
#if defined(__linux__)
            cpu_set_t set;
            CPU_ZERO(&set);
            sched_getaffinity(0, sizeof(set), &set);
            for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
                if (!CPU_ISSET(cpu, &set)) continue;
                const auto& cpus = topo.node(node).cpus;
                if (std::find(cpus.begin(), cpus.end(), cpu) == cpus.end()) ++wrong;
            }
#else
            (void)node;
#endif
        });
        QCOMPARE(wrong.load(), 0);
    }
};

QTEST_GUILESS_MAIN(TestNuma)
#include "tst_numa.moc"
