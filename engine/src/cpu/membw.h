#pragma once
// The machine's DRAM read bandwidth, measured the way an expert kernel reads weights: several
// threads streaming disjoint parts of a buffer much larger than the last-level cache.
#include <cstddef>

namespace moe {

struct MemoryBandwidth {
    double read_gb_per_s = 0.0;  // best of the repetitions, 1 GB = 1e9 bytes
    size_t bytes = 0;
    int threads = 0;
};

// Streams `bytes` (default 1 GiB) `repeats` times with `threads` threads (0 = parallel_threads()).
MemoryBandwidth measure_dram_read(int threads = 0, size_t bytes = size_t(1) << 30, int repeats = 5);

}  // namespace moe
