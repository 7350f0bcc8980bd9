#pragma once
// What the machine's GPUs are, asked without needing them: every build has this (a build
// without CUDA simply reports none), so the planner, the CLI and the UI can show VRAM and
// choose a default budget without including CUDA headers.
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

struct GpuInfo {
    int index = 0;
    std::string name;
    int compute_major = 0, compute_minor = 0;
    int multiprocessors = 0;
    uint64_t total_bytes = 0, free_bytes = 0;
};

// This build has the CUDA path (MOE_HAVE_CUDA).
bool cuda_built();
// The GPUs the CUDA runtime sees; empty when none (or no driver, or a build without CUDA) —
// gpu_unavailable_reason() then says why in words.
std::vector<GpuInfo> list_gpus();
std::string gpu_unavailable_reason();

}  // namespace moe
