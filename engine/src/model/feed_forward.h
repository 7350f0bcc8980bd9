#pragma once
// Feed-forward blocks: the dense gated MLP (also used for shared experts).
#include <cmath>
#include <cstdint>

#include "model/linear.h"

namespace moe {

class FeedForward {
  public:
    virtual ~FeedForward() = default;
    // x [T, hidden] -> out [T, hidden] (overwritten).
    virtual void forward(const float* x, int64_t T, float* out) const = 0;
    virtual void visit_linears(const LinearVisitor& f) = 0;
};

// SiLU-gated MLP: down(silu(gate(x)) * up(x)).
class GatedMlp : public FeedForward {
  public:
    Linear gate, up, down;
    void forward(const float* x, int64_t T, float* out) const override;
    void visit_linears(const LinearVisitor& f) override {
        f(gate);
        f(up);
        f(down);
    }
};

inline float silu(float v) {
    return v / (1.0f + std::exp(-v));
}

}  // namespace moe
