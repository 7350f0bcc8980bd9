#include "core/cpu_info.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "core/error.h"

#if defined(__linux__)
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define MOE_X86_CPUID_GNU 1
#elif defined(_M_X64) || defined(_M_IX86)
#include <intrin.h>
#define MOE_X86_CPUID_MSVC 1
#endif

namespace moe {
namespace {

// ---- CPUID ------------------------------------------------------------------------------

struct Regs {
    uint32_t a = 0, b = 0, c = 0, d = 0;
};

[[maybe_unused]] bool cpuid(uint32_t leaf, uint32_t subleaf, Regs& r) {
#if defined(MOE_X86_CPUID_GNU)
    return __get_cpuid_count(leaf, subleaf, &r.a, &r.b, &r.c, &r.d) != 0;
#elif defined(MOE_X86_CPUID_MSVC)
    int max[4];
    __cpuid(max, int(leaf & 0x80000000u));
    if (uint32_t(max[0]) < leaf) return false;
    int v[4];
    __cpuidex(v, int(leaf), int(subleaf));
    r = {uint32_t(v[0]), uint32_t(v[1]), uint32_t(v[2]), uint32_t(v[3])};
    return true;
#else
    (void)leaf, (void)subleaf, (void)r;
    return false;
#endif
}

// XCR0: which register states the OS saves on a context switch. A CPUID bit alone is not
// enough: a kernel booted without AVX-512 state support faults on the first ZMM instruction.
[[maybe_unused]] uint64_t read_xcr0() {
#if defined(MOE_X86_CPUID_GNU)
    uint32_t lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));  // not _xgetbv: needs -mxsave
    return (uint64_t(hi) << 32) | lo;
#elif defined(MOE_X86_CPUID_MSVC)
    return _xgetbv(0);
#else
    return 0;
#endif
}

bool bit(uint32_t v, int i) {
    return (v >> i) & 1u;
}

CpuFeatures detect_features() {
    CpuFeatures f;
#if defined(MOE_X86_CPUID_GNU) || defined(MOE_X86_CPUID_MSVC)
    Regs l1, l7, l7s1;
    if (!cpuid(1, 0, l1)) return f;
    const bool osxsave = bit(l1.c, 27);
    const uint64_t xcr0 = osxsave ? read_xcr0() : 0;
    const bool os_avx = (xcr0 & 0x6) == 0x6;                 // XMM + YMM
    const bool os_avx512 = os_avx && (xcr0 & 0xE0) == 0xE0;  // opmask, ZMM_Hi256, Hi16_ZMM
    const bool os_amx = (xcr0 & 0x60000) == 0x60000;         // XTILECFG + XTILEDATA
    const bool avx = os_avx && bit(l1.c, 28);
    f.fma = avx && bit(l1.c, 12);
    f.f16c = avx && bit(l1.c, 29);
    if (cpuid(7, 0, l7)) {
        f.avx2 = avx && bit(l7.b, 5);
        f.avx512f = os_avx512 && bit(l7.b, 16);
        f.avx512bw = f.avx512f && bit(l7.b, 30);
        f.avx512vl = f.avx512f && bit(l7.b, 31);
        f.avx512_vnni = f.avx512f && bit(l7.c, 11);
        f.amx_bf16 = os_amx && bit(l7.d, 22);
        f.amx_tile = os_amx && bit(l7.d, 24);
        f.amx_int8 = os_amx && bit(l7.d, 25);
        if (l7.a >= 1 && cpuid(7, 1, l7s1)) {
            f.avx_vnni = avx && bit(l7s1.a, 4);
            f.avx512_bf16 = f.avx512f && bit(l7s1.a, 5);
        }
    }
#endif
    return f;
}

std::string trim(std::string s) {
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return {};
    const auto last = s.find_last_not_of(" \t\r\n");
    return s.substr(first, last - first + 1);
}

std::string detect_model_name() {
#if defined(MOE_X86_CPUID_GNU) || defined(MOE_X86_CPUID_MSVC)
    Regs r;
    if (cpuid(0x80000000u, 0, r) && r.a >= 0x80000004u) {
        std::string name;
        for (uint32_t leaf = 0x80000002u; leaf <= 0x80000004u; ++leaf) {
            cpuid(leaf, 0, r);
            for (uint32_t v : {r.a, r.b, r.c, r.d})
                for (int i = 0; i < 4; ++i) name += char((v >> (8 * i)) & 0xFF);
        }
        name = trim(name.c_str());  // the brand string is NUL-padded
        if (!name.empty()) return name;
    }
#endif
#if defined(__linux__)
    // Non-x86 (or a hypervisor hiding the brand string): /proc/cpuinfo names the model.
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);) {
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        const std::string key = trim(line.substr(0, colon));
        if (key == "model name" || key == "Model" || key == "cpu model")
            return trim(line.substr(colon + 1));
    }
#endif
    return "unknown CPU";
}

// ---- topology ---------------------------------------------------------------------------

#if defined(__linux__)
int read_int_file(const std::string& path, int fallback) {
    std::ifstream in(path);
    int v = 0;
    return (in >> v) ? v : fallback;
}

std::string read_line_file(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return trim(line);
}

std::vector<int> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        for (int i = 0; i < CPU_SETSIZE; ++i)
            if (CPU_ISSET(i, &set)) cpus.push_back(i);
    }
    if (cpus.empty()) {
        try {
            cpus = parse_cpu_list(read_line_file("/sys/devices/system/cpu/online"));
        } catch (const Error&) {
        }
    }
    return cpus;
}

// CPU -> node from /sys/devices/system/node/node*/cpulist (works without libnuma).
std::map<int, int> cpu_nodes() {
    std::map<int, int> nodes;
    const std::string online = read_line_file("/sys/devices/system/node/online");
    if (online.empty()) return nodes;
    try {
        for (int node : parse_cpu_list(online)) {
            const std::string list =
                read_line_file("/sys/devices/system/node/node" + std::to_string(node) + "/cpulist");
            if (list.empty()) continue;
            for (int cpu : parse_cpu_list(list)) nodes[cpu] = node;
        }
    } catch (const Error&) {
        nodes.clear();
    }
    return nodes;
}
#endif

void fill_topology(CpuInfo& info) {
    info.cpus.clear();
#if defined(__linux__)
    const std::vector<int> cpus = allowed_cpus();
    const std::map<int, int> nodes = cpu_nodes();
    // (package, die, core_id) names a physical core; its hyper-threads share it.
    std::map<std::tuple<int, int, int>, int> core_index;
    for (int id : cpus) {
        const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(id) + "/topology/";
        const int package = read_int_file(dir + "physical_package_id", 0);
        const int die = read_int_file(dir + "die_id", 0);
        const int core_id = read_int_file(dir + "core_id", id);  // unknown: its own core
        const auto key = std::make_tuple(package, die, core_id);
        auto it = core_index.find(key);
        if (it == core_index.end()) it = core_index.emplace(key, int(core_index.size())).first;
        LogicalCpu cpu;
        cpu.id = id;
        cpu.core = it->second;
        cpu.package = std::max(0, package);
        const auto node = nodes.find(id);
        cpu.node = node == nodes.end() ? 0 : node->second;
        info.cpus.push_back(cpu);
    }
#endif
    if (info.cpus.empty()) {
        // No sysfs (other OS, sandbox): every hardware thread counts as a core.
        const int n = int(std::max(1u, std::thread::hardware_concurrency()));
        for (int i = 0; i < n; ++i) info.cpus.push_back({i, i, 0, 0});
    }
    std::set<int> cores, packages, numa;
    for (const LogicalCpu& c : info.cpus) {
        cores.insert(c.core);
        packages.insert(c.package);
        numa.insert(c.node);
    }
    info.logical_cores = int(info.cpus.size());
    info.physical_cores = int(cores.size());
    info.packages = int(packages.size());
    info.numa_nodes = int(numa.size());
}

}  // namespace

std::vector<int> parse_cpu_list(const std::string& text) {
    std::vector<int> cpus;
    std::stringstream ss(text);
    for (std::string item; std::getline(ss, item, ',');) {
        item = trim(item);
        if (item.empty()) continue;
        const auto dash = item.find('-');
        try {
            size_t used = 0;
            const int first = std::stoi(item.substr(0, dash), &used);
            require(used == item.substr(0, dash).size(), "");
            int last = first;
            if (dash != std::string::npos) {
                const std::string tail = item.substr(dash + 1);
                last = std::stoi(tail, &used);
                require(used == tail.size(), "");
            }
            require(first >= 0 && last >= first, "");
            for (int i = first; i <= last; ++i) cpus.push_back(i);
        } catch (const std::exception&) {
            throw Error("invalid CPU list \"" + text + "\" (expected e.g. \"0-3,8,10-11\")");
        }
    }
    std::sort(cpus.begin(), cpus.end());
    cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
    return cpus;
}

CpuInfo detect_cpu_info() {
    CpuInfo info;
    info.model_name = detect_model_name();
    info.features = detect_features();
    fill_topology(info);
    return info;
}

const CpuInfo& cpu_info() {
    static const CpuInfo info = detect_cpu_info();
    return info;
}

int default_thread_count() {
    if (const char* env = std::getenv("MOE_THREADS")) {
        const int n = std::atoi(env);
        if (n > 0) return n;
    }
    return std::max(1, cpu_info().physical_cores);
}

std::vector<int> order_by_core(const std::vector<int>& cpus) {
    std::map<int, int> core_of;
    for (const LogicalCpu& c : cpu_info().cpus) core_of[c.id] = c.core;
    std::vector<int> sorted = cpus;
    std::sort(sorted.begin(), sorted.end());
    // Keyed (rank among its core's CPUs, core, id): rank 0 of every core sorts first.
    std::map<int, int> seen_per_core;
    std::vector<std::tuple<int, int, int>> keyed;
    std::vector<int> unknown;
    for (int id : sorted) {
        const auto it = core_of.find(id);
        if (it == core_of.end())
            unknown.push_back(id);
        else
            keyed.emplace_back(seen_per_core[it->second]++, it->second, id);
    }
    std::sort(keyed.begin(), keyed.end());
    std::vector<int> out;
    out.reserve(cpus.size());
    for (const auto& k : keyed) out.push_back(std::get<2>(k));
    out.insert(out.end(), unknown.begin(), unknown.end());
    return out;
}

bool request_amx_permission() {
    const CpuFeatures& f = cpu_info().features;
    if (!f.amx_tile) return false;
#if defined(__linux__) && defined(__x86_64__) && defined(SYS_arch_prctl)
    constexpr int kArchReqXcompPerm = 0x1023;  // <asm/prctl.h>, Linux 5.16+
    constexpr int kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
    return false;
#endif
}

std::string cpu_summary() {
    const CpuInfo& info = cpu_info();
    std::ostringstream out;
    const auto plural = [](int n, const char* word) {
        return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
    };
    out << info.model_name << " | " << info.physical_cores << " physical / " << info.logical_cores
        << " logical cores, " << plural(info.packages, "package") << ", "
        << plural(info.numa_nodes, "NUMA node") << " |";
    const CpuFeatures& f = info.features;
    const std::pair<bool, const char*> flags[] = {
        {f.avx2, "AVX2"},
        {f.fma, "FMA"},
        {f.f16c, "F16C"},
        {f.avx512f, "AVX512F"},
        {f.avx512bw, "AVX512BW"},
        {f.avx512vl, "AVX512VL"},
        {f.avx512_bf16, "AVX512_BF16"},
        {f.avx512_vnni, "AVX512_VNNI"},
        {f.avx_vnni, "AVX_VNNI"},
        {f.amx_tile, "AMX_TILE"},
        {f.amx_bf16, "AMX_BF16"},
        {f.amx_int8, "AMX_INT8"},
    };
    bool any = false;
    for (const auto& [on, name] : flags) {
        if (!on) continue;
        out << ' ' << name;
        any = true;
    }
    if (!any) out << " no AVX2";
    out << " | " << plural(default_thread_count(), "thread");
    return out.str();
}

}  // namespace moe
