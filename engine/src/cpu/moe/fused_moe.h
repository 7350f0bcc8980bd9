#pragma once
// The fused MoE expert step on the CPU: out[t] = sum_j w[t,j] * expert_{id[t,j]}(x[t]) over the
// experts not resident elsewhere, with
//   expert(x) = down · act(gate · x + bg, up · x + bu) + bd.
// It computes what run_experts_reference (model/moe_block.h) computes, over packed weights
// (moe_kernels.h) or GGUF weights used in place (gguf_row_dot.h).
//
// Schedule (each phase one parallel_for, so decode with k experts still uses every core):
//   1. group tokens per expert; per active expert gather its tokens and prepare activations
//   2. work items (expert, range of 16-row gate/up block pairs): gate and up from one pass over
//      the activations, GLU applied straight away -> h_e [n_e, inter]
//   3. prepare h_e per expert
//   4. work items (expert, range of 16-row down blocks) -> y_e [n_e, hidden]
//   5. per token: out[t] = sum over j in routing order of w[t,j] * y_{id[t,j]}[t]
// Every output element is written by exactly one work item and the final sum runs in a fixed
// order, so results are deterministic and independent of the thread count.
#include <cstdint>
#include <vector>

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

struct BankExpert {
    bool gguf = false;
    PackedMatrix gate_up, down;                        // packed experts
    GgufMatrix gate, up, gguf_down;                    // GGUF-native experts
    std::vector<float> gate_bias, up_bias, down_bias;  // empty = none
};

// One MoE layer's routed experts on the CPU.
struct ExpertBank {
    int64_t hidden = 0, inter = 0;
    GluActivation act;
    std::vector<BankExpert> experts;
};

// Where an expert's weights come from: row-major [inter, hidden] gate/up and [hidden, inter]
// down in any stored type, with optional biases.
struct ExpertSource {
    WeightMatrix gate, up, down;
    std::vector<float> gate_bias, up_bias, down_bias;
};

// Packs an expert with `opt` (rows converted with row_to_f32, parallel over row blocks). With
// `keep_gguf` and all three matrices GGUF block formats with CPU kernels, nothing is copied:
// the expert points at the source data (which must outlive the bank).
BankExpert make_bank_expert(const ExpertSource& src, const PackOptions& opt, bool keep_gguf);

// out [T, hidden] (overwritten) for x [T, hidden]; ids/weights [T, k]; skip: one byte per
// expert, nonzero = the expert runs elsewhere and contributes nothing here (may be null).
void fused_moe(const ExpertBank& bank, const float* x, int64_t T, const int32_t* ids,
               const float* weights, int64_t k, const uint8_t* skip, float* out,
               KernelVariant variant = default_kernel_variant());

}  // namespace moe
