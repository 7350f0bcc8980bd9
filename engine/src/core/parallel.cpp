#include "core/parallel.h"

#include <algorithm>

#include "core/worker_pool.h"

namespace moe {

// The engine's loops share the process-wide WorkerPool (default_worker_pool()), so the CPU
// expert kernels and these loops never oversubscribe the cores between them.

int parallel_threads() {
    return default_worker_pool().size();
}

void set_parallel_threads(int n) {
    default_worker_pool().resize(std::max(1, n));
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    default_worker_pool().parallel_for(
        n, [&fn](int64_t begin, int64_t end, int) { fn(begin, end); }, grain);
}

}  // namespace moe
