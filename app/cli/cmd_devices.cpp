// moestudio-cli devices: what this machine offers the engine — the CPU (cores, NUMA nodes,
// the expert-kernel variant in use) and the GPUs the CUDA runtime sees — as JSON, so that
// scripts (and users picking a --gpu-budget) need not guess.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "core/cpu_info.h"
#include "core/error.h"
#include "core/numa.h"
#include "cpu/moe/moe_kernels.h"
#include "cuda/gpu.h"

namespace moecli {

int cmd_devices(const std::vector<std::string>& argv) {
    const Args args(argv, {}, {});
    if (!args.positional().empty()) throw moe::Error("usage: moestudio-cli devices");
    const moe::CpuInfo& c = moe::cpu_info();
    nlohmann::json gpus = nlohmann::json::array();
    for (const moe::GpuInfo& g : moe::list_gpus()) {
        gpus.push_back({{"index", g.index},
                        {"name", g.name},
                        {"compute_capability",
                         std::to_string(g.compute_major) + "." + std::to_string(g.compute_minor)},
                        {"multiprocessors", g.multiprocessors},
                        {"total_bytes", g.total_bytes},
                        {"free_bytes", g.free_bytes}});
    }
    nlohmann::json j = {
        {"cpu",
         {{"model", c.model_name},
          {"physical_cores", c.physical_cores},
          {"logical_cores", c.logical_cores},
          {"packages", c.packages},
          {"numa", moe::numa_topology().describe()},
          {"expert_kernels", moe::kernel_variant_name(moe::default_kernel_variant())},
          {"default_threads", moe::default_thread_count()}}},
        {"cuda_built", moe::cuda_built()},
        {"gpus", gpus},
    };
    if (gpus.empty()) j["gpu_unavailable"] = moe::gpu_unavailable_reason();
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
}

}  // namespace moecli
