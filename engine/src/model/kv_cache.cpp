#include "model/kv_cache.h"

#include <algorithm>

namespace moe {

void KvCache::truncate(int64_t n) {
    n = std::clamp<int64_t>(n, 0, n_past_);
    for (auto& l : layers_) {
        l.k.resize(size_t(n * l.k_width));
        l.v.resize(size_t(n * l.v_width));
    }
    n_past_ = n;
}

}  // namespace moe
