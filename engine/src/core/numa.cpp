#include "core/numa.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <set>
#include <sstream>

#include "core/cpu_info.h"
#include "core/error.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(MOE_HAVE_NUMA)
#include <numa.h>
#endif

namespace moe {
namespace {

NumaNode make_node(int os_node, const std::vector<int>& cpus) {
    NumaNode node;
    node.os_node = os_node;
    node.cpus = order_by_core(cpus);
    std::map<int, int> core_of;
    for (const LogicalCpu& c : cpu_info().cpus) core_of[c.id] = c.core;
    std::set<int> cores;
    for (int cpu : cpus) {
        const auto it = core_of.find(cpu);
        cores.insert(it == core_of.end() ? -1 - cpu : it->second);  // unknown: its own core
    }
    node.physical_cores = int(cores.size());
    return node;
}

// Compresses sorted CPU ids into the sysfs list form ("0-3,8").
std::string cpu_list_text(std::vector<int> cpus) {
    std::sort(cpus.begin(), cpus.end());
    std::ostringstream out;
    for (size_t i = 0; i < cpus.size();) {
        size_t j = i;
        while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
        if (i > 0) out << ',';
        out << cpus[i];
        if (j > i) out << '-' << cpus[j];
        i = j + 1;
    }
    return out.str();
}

}  // namespace

bool numa_supported() {
#if defined(MOE_HAVE_NUMA)
    static const bool ok = numa_available() >= 0;
    return ok;
#else
    return false;
#endif
}

NumaTopology NumaTopology::detect() {
    std::map<int, std::vector<int>> by_node;
    for (const LogicalCpu& c : cpu_info().cpus) {
        int node = c.node;
#if defined(MOE_HAVE_NUMA)
        if (numa_supported()) {
            const int n = numa_node_of_cpu(c.id);
            if (n >= 0) node = n;
        }
#endif
        by_node[node].push_back(c.id);
    }
    NumaTopology t;
    for (const auto& [node, cpus] : by_node) t.nodes_.push_back(make_node(node, cpus));
    return t;
}

NumaTopology NumaTopology::virtual_nodes(int parts) {
    return virtual_nodes(parts, detect());
}

NumaTopology NumaTopology::virtual_nodes(int parts, const NumaTopology& base) {
    require(parts >= 1, "virtual NUMA partitions: need at least 1, got " + std::to_string(parts));
    // Cores in base order (node by node), each with all of its logical CPUs.
    std::map<int, int> core_of;
    for (const LogicalCpu& c : cpu_info().cpus) core_of[c.id] = c.core;
    std::vector<std::vector<int>> cores;
    std::map<int, size_t> core_slot;
    for (const NumaNode& node : base.nodes()) {
        for (int cpu : node.cpus) {
            const auto it = core_of.find(cpu);
            const int core = it == core_of.end() ? -1 - cpu : it->second;
            auto slot = core_slot.find(core);
            if (slot == core_slot.end()) {
                slot = core_slot.emplace(core, cores.size()).first;
                cores.emplace_back();
            }
            cores[slot->second].push_back(cpu);
        }
    }
    require(!cores.empty(), "virtual NUMA partitions: no CPUs to split");
    NumaTopology t;
    t.virtual_ = true;
    const int64_t ncores = int64_t(cores.size());
    for (int p = 0; p < parts; ++p) {
        std::vector<int> cpus;
        if (ncores >= parts) {
            for (int64_t c = ncores * p / parts; c < ncores * (p + 1) / parts; ++c)
                cpus.insert(cpus.end(), cores[size_t(c)].begin(), cores[size_t(c)].end());
        } else {
            cpus = cores[size_t(p % ncores)];
        }
        t.nodes_.push_back(make_node(-1, cpus));
    }
    return t;
}

std::string NumaTopology::describe() const {
    std::ostringstream out;
    out << node_count() << (virtual_ ? " virtual" : "") << " NUMA node"
        << (node_count() == 1 ? "" : "s") << ":";
    for (int i = 0; i < node_count(); ++i)
        out << ' ' << (virtual_ ? i : nodes_[size_t(i)].os_node) << " ["
            << cpu_list_text(nodes_[size_t(i)].cpus) << ']';
    return out.str();
}

const NumaTopology& numa_topology() {
    static const NumaTopology topology = [] {
        if (const char* env = std::getenv("MOE_NUMA_VIRTUAL")) {
            const int parts = std::atoi(env);
            if (parts >= 1) return NumaTopology::virtual_nodes(parts);
        }
        return NumaTopology::detect();
    }();
    return topology;
}

// ---- memory -----------------------------------------------------------------------------

void* numa_alloc_on_node(size_t bytes, int os_node) {
    if (bytes == 0) return nullptr;
    void* p = nullptr;
#if defined(MOE_HAVE_NUMA)
    if (os_node >= 0 && numa_supported() && os_node <= numa_max_node() &&
        numa_bitmask_isbitset(numa_all_nodes_ptr, unsigned(os_node))) {
        // mmap + a preferred-node policy: pages land on the node when first touched, and
        // spill to other nodes instead of failing when it is full.
        p = numa_alloc_onnode(bytes, os_node);
        if (!p)
            throw Error("cannot allocate " + std::to_string(bytes) + " bytes on NUMA node " +
                        std::to_string(os_node));
    }
#endif
#if defined(__linux__)
    if (!p) {
        // mmap rather than aligned_alloc so both paths are freed with munmap (numa_free is
        // munmap) and a weight buffer never lands in the middle of the malloc heap.
        p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            throw Error("cannot allocate " + std::to_string(bytes) + " bytes of memory");
    }
    // Expert weights are streamed once per token: 2 MiB pages save the TLB misses.
    constexpr size_t kHugePage = size_t(2) << 20;
    if (bytes >= kHugePage) madvise(p, bytes, MADV_HUGEPAGE);
#else
    (void)os_node;
    const size_t rounded = (bytes + 63) / 64 * 64;
    p = ::operator new(rounded, std::align_val_t(64), std::nothrow);
    if (!p) throw Error("cannot allocate " + std::to_string(bytes) + " bytes of memory");
    std::memset(p, 0, rounded);
#endif
    return p;
}

void numa_free(void* p, size_t bytes) {
    if (!p) return;
#if defined(__linux__)
    munmap(p, bytes);
#else
    (void)bytes;
    ::operator delete(p, std::align_val_t(64));
#endif
}

std::vector<std::pair<int64_t, int64_t>> split_range(int64_t n, int parts, int64_t align) {
    require(n >= 0 && parts >= 1 && align >= 1,
            "split_range: need n >= 0, parts >= 1, align >= 1 (got n=" + std::to_string(n) +
                ", parts=" + std::to_string(parts) + ", align=" + std::to_string(align) + ")");
    const int64_t blocks = (n + align - 1) / align;
    std::vector<std::pair<int64_t, int64_t>> out;
    out.reserve(size_t(parts));
    for (int i = 0; i < parts; ++i) {
        const int64_t b = blocks * i / parts, e = blocks * (i + 1) / parts;
        out.emplace_back(std::min(n, b * align), std::min(n, e * align));
    }
    return out;
}

// ---- NumaPools --------------------------------------------------------------------------

NumaPools::NumaPools(const NumaTopology& topology, bool pin, int threads_per_node)
    : topology_(topology) {
    require(topology_.node_count() >= 1, "NumaPools: the topology has no nodes");
    if (threads_per_node <= 0) {
        if (const char* env = std::getenv("MOE_THREADS")) {
            const int total = std::atoi(env);
            if (total > 0) threads_per_node = std::max(1, total / topology_.node_count());
        }
    }
    offsets_.push_back(0);
    for (int i = 0; i < topology_.node_count(); ++i) {
        const NumaNode& node = topology_.node(i);
        WorkerPoolOptions o;
        o.threads = threads_per_node > 0 ? threads_per_node : std::max(1, node.physical_cores);
        o.pin = pin;
        o.cpus = node.cpus;
        o.caller_joins = false;
        o.name = "moe-n" + std::to_string(i);
        pools_.push_back(std::make_unique<WorkerPool>(std::move(o)));
        offsets_.push_back(offsets_.back() + pools_.back()->size());
    }
    queue_ = std::make_unique<TaskQueue>();
}

NumaPools::~NumaPools() {
    queue_.reset();  // its tasks may still run loops on the pools
}

void NumaPools::parallel_for(int64_t n, const Body& fn, int64_t grain) {
    if (n <= 0) return;
    const int nodes = node_count();
    if (const int worker = WorkerPool::current_worker(); worker >= 0) {
        for (int node = 0; node < nodes; ++node) fn(node, 0, n, worker);
        return;
    }
    std::vector<WorkerPool::Body> bodies;  // complete before any launch: pools keep pointers
    bodies.reserve(size_t(nodes));
    for (int node = 0; node < nodes; ++node)
        bodies.emplace_back([&fn, node](int64_t b, int64_t e, int w) { fn(node, b, e, w); });
    // Pools are always launched in node order, so concurrent callers cannot deadlock.
    for (int node = 0; node < nodes; ++node)
        pools_[size_t(node)]->launch(n, bodies[size_t(node)], grain);
    std::exception_ptr first;
    for (int node = 0; node < nodes; ++node) {
        std::exception_ptr e = pools_[size_t(node)]->finish();
        if (e && !first) first = e;
    }
    if (first) std::rethrow_exception(first);
}

TaskHandle NumaPools::submit(std::function<void()> task) {
    return queue_->submit(std::move(task));
}

void NumaPools::sync(TaskHandle task) {
    queue_->sync(task);
}

void NumaPools::wait_all() {
    queue_->wait_all();
}

NumaPools& numa_pools() {
    static NumaPools pools(numa_topology(), !numa_topology().is_virtual());
    return pools;
}

}  // namespace moe
