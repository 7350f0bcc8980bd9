#pragma once
// The fused MoE expert step on the CPU: out[t] = sum_j w[t,j] * expert_{id[t,j]}(x[t]) over the
// experts not resident elsewhere, with
//   expert(x) = down · act(gate · x + bg, up · x + bu) + bd.
// It computes what run_experts_reference (model/moe_block.h) computes, over packed weights
// (moe_kernels.h) or GGUF weights used in place (gguf_row_dot.h).
//
// NUMA: a bank may split every expert's intermediate dimension into parts, one per NUMA node
// (ExpertPart): node p holds gate/up rows [i0, i1) and the matching columns of down in its own
// memory and its own cores compute them; the parts' down outputs are partial sums, added in
// node order at the end. A one-part bank runs on the process-wide worker pool.
//
// Schedule (each phase one parallel loop over all parts' items, so decode with k experts uses
// every core; two barriers per call):
//   A. items (expert part, range of 16-row gate/up block pairs): the expert's activations are
//      gathered and prepared by the first item that needs them (once; at T = 1 once for all
//      experts), gate and up come from one pass over them, the GLU is applied straight away
//      -> h [n_e, part inter]; the item that finishes a part prepares its h for down
//   B. items (expert part, range of 16-row down blocks) -> y [n_e, hidden], partial per part;
//      the row ranges are long enough for the prefetchers to stream each expert's rows, and
//      the item that completes a row range (the last of its experts and parts) writes
//      out[t] = sum over j in routing order of w[t,j] * (sum of the parts' y + bias) for those
//      rows, so the weighted sum needs no pass (and no barrier) of its own
// Every output element is written by exactly one work item, experts are added in a fixed
// order, so results are deterministic and independent of the thread count.
#include <cstdint>
#include <memory>
#include <vector>

#include "core/numa.h"

#include "cpu/gemm.h"
#include "cpu/moe/moe_kernels.h"
#include "formats/ggml_types.h"

namespace moe {

// Mirrors model/ExpertActivation (cpu/ sits below model/ and cannot include it).
struct GluActivation {
    enum class Kind { SiluGlu, ClampedSwiGlu } kind = Kind::SiluGlu;
    float alpha = 1.702f;  // gpt-oss: h = (clamp(up, -limit, limit) + 1) * g * sigmoid(alpha g),
    float limit = 7.0f;    //          g = min(gate, limit)
    void apply(const float* gate, const float* up, float* h, int64_t n) const;
};

// A GGUF matrix used in place (rows of ggml blocks, e.g. a slice of the mmap).
struct GgufMatrix {
    GgmlType type = GgmlType::F32;
    const void* data = nullptr;
    int64_t rows = 0, cols = 0;
    size_t row_bytes = 0;
};

// One NUMA node's slice of an expert: intermediate rows [i0, i1).
struct ExpertPart {
    int64_t i0 = 0, i1 = 0;
    PackedMatrix gate_up, down;      // packed: gate/up rows i0..i1, down columns i0..i1
    GgufMatrix gate, up, gguf_down;  // GGUF-native: views (or node-local copies) of the same
    std::shared_ptr<void> storage;   // owns node-local GGUF copies; null for views
    size_t bytes() const;
};

struct BankExpert {
    bool gguf_in = false;           // gate/up are GGUF rows used in place (else packed)
    bool gguf_out = false;          // down is GGUF rows used in place (else packed)
    std::vector<ExpertPart> parts;  // one per node of the bank, node order
    std::vector<float> gate_bias, up_bias, down_bias;  // empty = none
    size_t bytes() const;
};

// One MoE layer's routed experts on the CPU.
struct ExpertBank {
    int64_t hidden = 0, inter = 0;
    GluActivation act;
    std::vector<BankExpert> experts;
    int parts() const { return experts.empty() ? 1 : int(experts.front().parts.size()); }
};

// Where an expert's weights come from: row-major [inter, hidden] gate/up and [hidden, inter]
// down in any stored type, with optional biases.
struct ExpertSource {
    WeightMatrix gate, up, down;
    std::vector<float> gate_bias, up_bias, down_bias;
};

// Packs an expert with `opt` (rows converted with row_to_f32, parallel over row blocks). With
// `keep_gguf` and all three matrices GGUF block formats with CPU kernels, nothing is packed:
// the expert points at the source data (which must outlive the bank). With opt.format Q4K the
// GGUF Q4_K matrices are repacked (losslessly) and the expert's other GGUF matrices (e.g. a
// Q6_K down of a Q4_K_M file) stay in place.
//
// `part_nodes` splits the expert into one part per entry (the intermediate dimension divided
// as evenly as the kernels' alignment allows: 16 rows, or the GGUF block of down); an entry
// >= 0 is the OS NUMA node whose memory holds that part (GGUF parts are then copied there),
// -1 ordinary memory (GGUF parts are views). Empty = one part in ordinary memory.
BankExpert make_bank_expert(const ExpertSource& src, const PackOptions& opt, bool keep_gguf,
                            const std::vector<int>& part_nodes = {});

// The parts a bank should have on this machine: one per node of numa_topology() (os_node of
// each; -1 for every node when there is only one, or for virtual partitions).
std::vector<int> bank_part_nodes();

// out [T, hidden] (overwritten) for x [T, hidden]; ids/weights [T, k]; skip: one byte per
// expert, nonzero = the expert runs elsewhere and contributes nothing here (may be null).
// A bank with several parts runs on `pools` (one node per part; default numa_pools()).
void fused_moe(const ExpertBank& bank, const float* x, int64_t T, const int32_t* ids,
               const float* weights, int64_t k, const uint8_t* skip, float* out,
               KernelVariant variant = default_kernel_variant(), NumaPools* pools = nullptr);

// Wall time per phase summed over calls, for benchmarks and the profiler view: off by default
// (then nothing is timed). setup = grouping and everything before phase A.
struct FusedMoeProfile {
    int64_t calls = 0;
    double total = 0, gate_up = 0, down = 0;  // seconds (down includes the weighted sum)
};
void set_fused_moe_profiling(bool on);
FusedMoeProfile fused_moe_profile();
void reset_fused_moe_profile();

}  // namespace moe
