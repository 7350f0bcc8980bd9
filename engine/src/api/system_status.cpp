#include "api/system_status.h"

#include <unistd.h>
#include <fstream>

#include "core/memory_info.h"
#include "cuda/gpu.h"

namespace moe {

SystemStatus system_status(bool with_gpus) {
    SystemStatus s;
    std::ifstream statm("/proc/self/statm");
    uint64_t pages_total = 0, pages_resident = 0;
    if (statm >> pages_total >> pages_resident)
        s.resident_bytes = pages_resident * uint64_t(sysconf(_SC_PAGESIZE));
    s.available_bytes = available_memory_bytes();
    if (with_gpus)
        for (const GpuInfo& g : list_gpus())
            s.gpus.push_back({g.name, g.total_bytes, g.free_bytes});
    return s;
}

}  // namespace moe
