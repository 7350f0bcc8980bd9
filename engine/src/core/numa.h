#pragma once
// NUMA placement for the CPU experts. On a multi-socket machine a core reading another
// socket's memory gets a fraction of the local bandwidth, so the expert operator splits each
// expert's intermediate dimension across nodes (split_range), keeps every node's slice of
// the weights in that node's memory (numa_alloc_on_node) and has that node's cores compute
// it (NumaPools). libnuma is used when the build found it (MOE_HAVE_NUMA); without it the
// topology comes from sysfs on Linux (one node elsewhere) and memory is ordinary.
//
// Virtual partitions (MOE_NUMA_VIRTUAL=k, or NumaTopology::virtual_nodes(k)) split the cores
// of a one-node machine into k pretend nodes, so the multi-node code path runs in tests and
// on a laptop; their memory is ordinary memory.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/worker_pool.h"

namespace moe {

struct NumaNode {
    int os_node = -1;       // the OS's node number for allocation; -1 for a virtual partition
    std::vector<int> cpus;  // logical CPUs, one per physical core first (order_by_core)
    int physical_cores = 0;
};

class NumaTopology {
  public:
    // The machine's nodes that hold CPUs of this process (memory-only nodes are left out).
    static NumaTopology detect();
    // `base`'s physical cores split into `parts` contiguous groups, hyper-threads kept with
    // their core. Disjoint when parts <= physical cores; with more parts than cores, cores
    // are shared round-robin (every partition still gets one).
    static NumaTopology virtual_nodes(int parts);
    static NumaTopology virtual_nodes(int parts, const NumaTopology& base);

    int node_count() const { return int(nodes_.size()); }
    const NumaNode& node(int i) const { return nodes_.at(size_t(i)); }
    const std::vector<NumaNode>& nodes() const { return nodes_; }
    bool is_virtual() const { return virtual_; }
    // e.g. "2 NUMA nodes: 0 [0-15,32-47] 1 [16-31,48-63]" (virtual ones say so).
    std::string describe() const;

  private:
    std::vector<NumaNode> nodes_;
    bool virtual_ = false;
};

// The process-wide topology, detected once: virtual_nodes(k) when MOE_NUMA_VIRTUAL=k (k>=1),
// else detect().
const NumaTopology& numa_topology();

// True when the build has libnuma and the kernel supports NUMA policies.
bool numa_supported();

// `bytes` of zeroed, page-aligned (at least 64-byte aligned) memory bound to OS node
// `os_node` (NumaNode::os_node). Pages are placed when first touched. With os_node < 0, a
// node that does not exist, or no libnuma, it is ordinary memory. Throws moe::Error when out
// of memory. Returns nullptr for 0 bytes. Large buffers are advised to use huge pages.
void* numa_alloc_on_node(size_t bytes, int os_node);
// Frees memory from numa_alloc_on_node; `bytes` must be the size that was asked for.
void numa_free(void* p, size_t bytes);

// Owns a numa_alloc_on_node buffer.
class NumaBuffer {
  public:
    NumaBuffer() = default;
    NumaBuffer(size_t bytes, int os_node)
        : data_(numa_alloc_on_node(bytes, os_node)), bytes_(bytes) {}
    ~NumaBuffer() { numa_free(data_, bytes_); }
    NumaBuffer(NumaBuffer&& o) noexcept
        : data_(std::exchange(o.data_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
    NumaBuffer& operator=(NumaBuffer&& o) noexcept {
        std::swap(data_, o.data_);
        std::swap(bytes_, o.bytes_);
        return *this;
    }
    void* data() const { return data_; }
    size_t size() const { return bytes_; }
    template <class T>
    T* as() const {
        return static_cast<T*>(data_);
    }

  private:
    void* data_ = nullptr;
    size_t bytes_ = 0;
};

// Splits [0, n) into `parts` consecutive [begin, end) ranges as equal as possible whose
// boundaries are multiples of `align` (the last range ends at n). Ranges may be empty when n
// has fewer than `parts` aligned blocks. Throws moe::Error for n < 0, parts < 1, align < 1.
std::vector<std::pair<int64_t, int64_t>> split_range(int64_t n, int parts, int64_t align);

// One WorkerPool per node, its workers pinned (when asked) to that node's cores. The pools
// run without the caller (WorkerPoolOptions::caller_joins = false) so that all nodes work at
// once while the caller waits.
class NumaPools {
  public:
    // (node, begin, end, worker id within the node's pool)
    using Body = std::function<void(int node, int64_t begin, int64_t end, int worker)>;

    // threads_per_node 0: each node's physical core count, or MOE_THREADS / nodes when set.
    explicit NumaPools(const NumaTopology& topology = numa_topology(), bool pin = false,
                       int threads_per_node = 0);
    ~NumaPools();  // finishes queued tasks first

    const NumaTopology& topology() const { return topology_; }
    int node_count() const { return int(pools_.size()); }
    WorkerPool& pool(int node) { return *pools_.at(size_t(node)); }
    // Total workers, and the first global id of a node's workers (offset + worker is unique
    // across nodes: index per-thread scratch with it).
    int total_workers() const { return offsets_.back(); }
    int worker_offset(int node) const { return offsets_.at(size_t(node)); }

    // On every node at once: that node's pool covers [0, n) (each node has its own copy of
    // the index space; fn picks the node's slice of the data with `node`). Returns when all
    // nodes are done; rethrows the first exception (in node order). Nested in a pool's loop
    // body: runs the nodes one after the other, inline.
    void parallel_for(int64_t n, const Body& fn, int64_t grain = 1);

    // A task queue whose tasks may call parallel_for above (see TaskQueue).
    TaskHandle submit(std::function<void()> task);
    void sync(TaskHandle task);
    void wait_all();

  private:
    NumaTopology topology_;
    std::vector<std::unique_ptr<WorkerPool>> pools_;
    std::vector<int> offsets_;
    std::unique_ptr<TaskQueue> queue_;
};

// The process-wide pools over numa_topology() (created on first use; workers pinned to their
// node's cores on a real multi-node machine). The expert operator runs multi-part banks here.
NumaPools& numa_pools();

}  // namespace moe
