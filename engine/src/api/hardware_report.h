#pragma once
// What this machine offers the engine, for `moestudio-cli devices` and the app's preflight /
// hardware page: the CPU (model, cores, sockets, NUMA nodes, vector extensions, the expert
// kernels chosen, the recommended thread count), memory (total, available, and, when asked,
// the measured DRAM read bandwidth — the bound on CPU-expert decode speed), and the GPUs.
#include <nlohmann/json.hpp>

namespace moe {

// measure_bandwidth: also time DRAM reads (about a second, every core busy).
nlohmann::json hardware_report(bool measure_bandwidth);

}  // namespace moe
