#pragma once
// How much memory the machine can still give this process, so that a load that would not fit
// stops with a message naming the numbers instead of being killed by the OOM killer halfway.
#include <cstdint>
#include <string>

namespace moe {

// Linux's MemAvailable (free memory plus what the kernel can reclaim without swapping, such as
// clean page cache), in bytes; 0 when unknown (other systems, no /proc). MOE_MEMORY_AVAILABLE
// (bytes) overrides it, to try the out-of-memory paths without filling the machine.
uint64_t available_memory_bytes();

// "12.3 GiB", or "740.0 MiB" below 1 GiB
std::string format_gib(uint64_t bytes);

}  // namespace moe
