#pragma once
// A frozen linear layer y = x W^T + b whose weight stays in its stored type (memory-mapped),
// plus the helpers that load weights from a WeightStore with shape checks.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cpu/gemm.h"
#include "formats/safetensors.h"

namespace moe {

struct Linear {
    WeightMatrix w;
    std::vector<float> bias;            // empty = no bias
    std::shared_ptr<const void> owner;  // keeps repacked or scale data alive

    int64_t out_features() const { return w.rows; }
    int64_t in_features() const { return w.cols; }
    // y [T, out] = x [T, in] W^T (+ bias)
    void forward(const float* x, int64_t T, float* y) const;
};

// Loads `name` (e.g. "model.layers.0.self_attn.q_proj.weight") as [out, in]. FP8 weights take
// their `<name>_scale_inv` block scales. `bias_name` is loaded when given and present; when
// `bias_required` it must be present.
Linear load_linear(const WeightStore& ws, const std::string& name, int64_t out, int64_t in);
Linear load_linear(const WeightStore& ws, const std::string& name, int64_t out, int64_t in,
                   const std::string& bias_name, bool bias_required);

// A 1-D tensor (norm weight, bias, sink) converted to fp32, with its length checked.
std::vector<float> load_vector(const WeightStore& ws, const std::string& name, int64_t n);

// Builds a Linear over weights held in memory (used for repacked expert layouts).
Linear make_linear(DType dtype, int64_t out, int64_t in, std::shared_ptr<const void> storage,
                   const void* data);

}  // namespace moe
