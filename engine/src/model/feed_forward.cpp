#include "model/feed_forward.h"

#include <vector>

namespace moe {

void GatedMlp::forward(const float* x, int64_t T, float* out) const {
    const int64_t inter = gate.out_features();
    std::vector<float> g(size_t(T * inter)), u(size_t(T * inter));
    gate.forward(x, T, g.data());
    up.forward(x, T, u.data());
    for (size_t i = 0; i < g.size(); ++i) g[i] = silu(g[i]) * u[i];
    down.forward(g.data(), T, out);
}

}  // namespace moe
