#include "core/memory_info.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace moe {

uint64_t available_memory_bytes() {
    if (const char* env = std::getenv("MOE_MEMORY_AVAILABLE"); env && *env)
        return std::strtoull(env, nullptr, 10);
    std::ifstream in("/proc/meminfo");
    std::string key;
    uint64_t value = 0;
    std::string unit;
    while (in >> key >> value) {
        std::getline(in, unit);
        if (key == "MemAvailable:") return value * 1024;  // reported in kB
    }
    return 0;
}

std::string format_gib(uint64_t bytes) {
    char s[32];
    if (bytes < (1ull << 30))
        std::snprintf(s, sizeof s, "%.1f MiB", double(bytes) / double(1ull << 20));
    else
        std::snprintf(s, sizeof s, "%.1f GiB", double(bytes) / double(1ull << 30));
    return s;
}

}  // namespace moe
