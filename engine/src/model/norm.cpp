#include "model/norm.h"

#include <cmath>

namespace moe {

void RmsNorm::apply(const float* x, int64_t rows, float* out, int64_t stride) const {
    const int64_t n = width();
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * stride;
        float* yr = out + r * stride;
        double ss = 0.0;
        for (int64_t i = 0; i < n; ++i) ss += double(xr[i]) * xr[i];
        const float inv = 1.0f / std::sqrt(float(ss / double(n)) + eps);
        for (int64_t i = 0; i < n; ++i) yr[i] = weight[size_t(i)] * (xr[i] * inv);
    }
}

}  // namespace moe
