#pragma once
// RMSNorm as transformers computes it: x * rsqrt(mean(x^2) + eps) * weight, in fp32.
#include <cstdint>
#include <vector>

namespace moe {

struct RmsNorm {
    std::vector<float> weight;
    float eps = 1e-6f;

    int64_t width() const { return int64_t(weight.size()); }
    // Normalises `rows` consecutive vectors of width() floats with a row stride of `stride`
    // (in place allowed: out may equal x).
    void apply(const float* x, int64_t rows, float* out, int64_t stride) const;
    void apply(const float* x, int64_t rows, float* out) const { apply(x, rows, out, width()); }
};

}  // namespace moe
