#include "api/hardware_report.h"

#include <fstream>
#include <string>

#include "core/cpu_info.h"
#include "core/memory_info.h"
#include "core/numa.h"
#include "cpu/membw.h"
#include "cpu/moe/moe_kernels.h"
#include "cuda/gpu.h"

namespace moe {

namespace {

uint64_t total_memory_bytes() {
    std::ifstream in("/proc/meminfo");
    std::string key;
    uint64_t kib = 0;
    while (in >> key >> kib) {
        if (key == "MemTotal:") return kib * 1024;
        in.ignore(64, '\n');
    }
    return 0;
}

}  // namespace

nlohmann::json hardware_report(bool measure_bandwidth) {
    const CpuInfo& c = cpu_info();
    const CpuFeatures& f = c.features;
    nlohmann::json isa = nlohmann::json::array();
    const std::pair<const char*, bool> flags[] = {{"AVX2", f.avx2},
                                                  {"FMA", f.fma},
                                                  {"F16C", f.f16c},
                                                  {"AVX-512F", f.avx512f},
                                                  {"AVX-512BW", f.avx512bw},
                                                  {"AVX-512 BF16", f.avx512_bf16},
                                                  {"AVX-512 VNNI", f.avx512_vnni},
                                                  {"AVX-VNNI", f.avx_vnni},
                                                  {"AMX-TILE", f.amx_tile},
                                                  {"AMX-BF16", f.amx_bf16},
                                                  {"AMX-INT8", f.amx_int8}};
    for (const auto& [name, on] : flags)
        if (on) isa.push_back(name);
    nlohmann::json gpus = nlohmann::json::array();
    for (const GpuInfo& g : list_gpus()) {
        gpus.push_back({{"index", g.index},
                        {"name", g.name},
                        {"compute_capability",
                         std::to_string(g.compute_major) + "." + std::to_string(g.compute_minor)},
                        {"multiprocessors", g.multiprocessors},
                        {"total_bytes", g.total_bytes},
                        {"free_bytes", g.free_bytes}});
    }
    nlohmann::json memory = {{"total_bytes", total_memory_bytes()},
                             {"available_bytes", available_memory_bytes()}};
    if (measure_bandwidth) {
        const MemoryBandwidth bw = measure_dram_read();
        memory["dram_read_gb_per_s"] = bw.read_gb_per_s;
        memory["dram_read_threads"] = bw.threads;
    }
    nlohmann::json j = {
        {"cpu",
         {{"model", c.model_name},
          {"physical_cores", c.physical_cores},
          {"logical_cores", c.logical_cores},
          {"packages", c.packages},
          {"numa", numa_topology().describe()},
          {"isa", isa},
          {"expert_kernels", kernel_variant_name(default_kernel_variant())},
          {"default_threads", default_thread_count()}}},
        {"memory", memory},
        {"cuda_built", cuda_built()},
        {"gpus", gpus},
    };
    if (gpus.empty()) j["gpu_unavailable"] = gpu_unavailable_reason();
    return j;
}

}  // namespace moe
