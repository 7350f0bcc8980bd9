#pragma once
// What the app shows about the machine while it runs: the process's resident memory, the
// memory still available, and each GPU's memory (read fresh on every call; cheap enough for a
// status bar that refreshes every few seconds).
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

struct GpuStatus {
    std::string name;
    uint64_t total_bytes = 0, free_bytes = 0;
};

struct SystemStatus {
    uint64_t resident_bytes = 0;   // this process (RSS)
    uint64_t available_bytes = 0;  // MemAvailable
    std::vector<GpuStatus> gpus;   // empty without a GPU (or a CUDA build)
};

// `with_gpus` asks the GPU driver too (skip it for a quick memory-only refresh).
SystemStatus system_status(bool with_gpus = true);

}  // namespace moe
