#pragma once
// A frozen linear layer y = x W^T + b whose weight stays in its stored type (memory-mapped),
// plus the helpers that load weights from a WeightStore with shape checks.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cpu/gemm.h"
#include "formats/safetensors.h"

namespace moe {

// A low-rank adapter term added to a frozen layer: y += scale * (x A^T) B^T.
struct LoraTerm {
    int64_t rank = 0;
    std::vector<float> a;  // [rank, in]
    std::vector<float> b;  // [out, rank]
    float scale = 1.0f;    // alpha / rank (or / sqrt(rank)) times the user's scale
};

struct Linear {
    std::string name;  // module name, e.g. "model.layers.0.self_attn.q_proj"
    WeightMatrix w;
    std::vector<float> bias;            // empty = no bias
    std::shared_ptr<const void> owner;  // keeps repacked or scale data alive
    std::vector<LoraTerm> lora;         // adapters applied on top of w
    // Bumped by whoever adds or changes adapter terms (copies merged from them go stale).
    uint64_t lora_version = 0;
    // Set by blocks that read `w` directly instead of calling forward() (MLA's absorbed
    // kv_b_proj): adapters on such a layer are merged into an fp32 copy of the weight.
    bool reads_weight_directly = false;

    int64_t out_features() const { return w.rows; }
    int64_t in_features() const { return w.cols; }
    // y [T, out] = x [T, in] W^T (+ bias) (+ adapters)
    void forward(const float* x, int64_t T, float* y) const;
    // Replaces w by an fp32 copy with every adapter term added, and drops the terms.
    void merge_lora();
};

using LinearVisitor = std::function<void(Linear&)>;

// Loads `name` (e.g. "model.layers.0.self_attn.q_proj.weight") as [out, in]. FP8 weights take
// their `<name>_scale_inv` block scales. `bias_name` is loaded when given and present; when
// `bias_required` it must be present.
Linear load_linear(const WeightStore& ws, const std::string& name, int64_t out, int64_t in);
Linear load_linear(const WeightStore& ws, const std::string& name, int64_t out, int64_t in,
                   const std::string& bias_name, bool bias_required);

// Any tensor's values as fp32 (plain types converted, GGUF block formats dequantized).
std::vector<float> tensor_to_f32(const TensorView& t);

// A 1-D tensor (norm weight, bias, sink) converted to fp32, with its length checked.
std::vector<float> load_vector(const WeightStore& ws, const std::string& name, int64_t n);

// Builds a Linear over weights held in memory (used for repacked expert layouts).
Linear make_linear(DType dtype, int64_t out, int64_t in, std::shared_ptr<const void> storage,
                   const void* data);

}  // namespace moe
