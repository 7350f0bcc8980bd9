#pragma once
// A small persistent thread pool for data-parallel loops over the engine's matrices.
// (The NUMA-aware expert worker pool of the CPU kernels builds on the same idea.)
#include <cstdint>
#include <functional>

namespace moe {

// Number of worker threads used by parallel_for (defaults to the hardware's thread count;
// MOE_THREADS overrides it).
int parallel_threads();
void set_parallel_threads(int n);

// Calls fn(begin, end) over disjoint chunks covering [0, n), using the pool. Chunks are at
// least `grain` long. Exceptions thrown by fn are rethrown to the caller (the first one).
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace moe
