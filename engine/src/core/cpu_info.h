#pragma once
// What the CPU kernels need to know about the machine: how many physical cores this process
// may use (the default thread count: hyper-threads share the core's FMA units and memory
// ports, so a bandwidth-bound expert kernel gains nothing from them), which logical CPUs sit
// on which core and NUMA node (for pinning), and which SIMD/matrix extensions the CPU has
// AND the OS has enabled (for picking a kernel).
#include <string>
#include <vector>

namespace moe {

// Instruction-set extensions usable by this process: reported by CPUID and with their
// register state enabled by the OS (XCR0), so a kernel may use them without faulting.
// AMX additionally needs request_amx_permission() once per process on Linux.
struct CpuFeatures {
    bool avx2 = false;
    bool fma = false;
    bool f16c = false;
    bool avx512f = false;
    bool avx512bw = false;
    bool avx512vl = false;
    bool avx512_bf16 = false;
    bool avx512_vnni = false;
    bool avx_vnni = false;
    bool amx_tile = false;
    bool amx_bf16 = false;
    bool amx_int8 = false;
};

struct LogicalCpu {
    int id = 0;       // the OS's CPU number (what sched_setaffinity takes)
    int core = 0;     // index of its physical core, 0 .. physical_cores - 1
    int package = 0;  // socket
    int node = 0;     // NUMA node as the kernel reports it (0 when unknown)
};

struct CpuInfo {
    std::string model_name;
    int logical_cores = 1;   // CPUs this process may run on (its affinity mask)
    int physical_cores = 1;  // distinct cores among them
    int packages = 1;
    int numa_nodes = 1;            // distinct nodes among those CPUs
    std::vector<LogicalCpu> cpus;  // sorted by id
    CpuFeatures features;
};

// Detected once, on first use. Only the CPUs in the process's affinity mask at that moment
// count (a container's cpuset is honoured; a cgroup CPU quota is not).
const CpuInfo& cpu_info();
// Detects again (for tests and tools); cpu_info() is this, cached.
CpuInfo detect_cpu_info();

// Worker threads to use by default: MOE_THREADS when set to a positive number, else the
// physical core count.
int default_thread_count();

// `cpus` reordered so that the first logical CPU of every physical core comes first (in core
// order), then the second hyper-thread of each, and so on: pinning worker i to element i
// gives each of the first physical_cores workers a core of its own. CPUs unknown to
// cpu_info() come last, ascending.
std::vector<int> order_by_core(const std::vector<int>& cpus);

// Parses a Linux CPU list such as "0-3,8,10-11" (sysfs cpulist format). Throws moe::Error
// on malformed input.
std::vector<int> parse_cpu_list(const std::string& text);

// Asks Linux for permission to use the AMX tile data state (arch_prctl
// ARCH_REQ_XCOMP_PERM); without it the first tile instruction raises SIGILL. Returns true
// when AMX may be used (permission granted now or earlier); false without AMX or elsewhere.
bool request_amx_permission();

// One line for the CLI/UI, e.g. "AMD EPYC 9654 | 96 physical / 192 logical cores, 2 packages,
// 2 NUMA nodes | AVX2 FMA F16C AVX512F ... | 96 threads".
std::string cpu_summary();

}  // namespace moe
