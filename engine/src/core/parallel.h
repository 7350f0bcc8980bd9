#pragma once
// Data-parallel loops over the engine's matrices, on the process-wide WorkerPool
// (core/worker_pool.h; the CPU expert kernels use that pool directly).
#include <cstdint>
#include <functional>

namespace moe {

// Number of worker threads used by parallel_for (defaults to the physical core count;
// MOE_THREADS overrides it).
int parallel_threads();
void set_parallel_threads(int n);

// Calls fn(begin, end) over disjoint chunks covering [0, n), using the pool. Chunk boundaries
// are multiples of `grain` (so chunks are at least `grain` long, but for the last). Exceptions
// thrown by fn are rethrown to the caller (the first one). Nested calls run inline.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace moe
