#include "hybrid/expert_cache_sim.h"

#include <limits>
#include <vector>

#include "core/error.h"

namespace moe {

CachePolicy parse_cache_policy(const std::string& s) {
    if (s == "lru") return CachePolicy::Lru;
    if (s == "lfu") return CachePolicy::Lfu;
    throw Error("cache policy '" + s + "': expected lru or lfu");
}

HitRate placement_hit_rate(const RoutingTrace& trace, const Placement& placement) {
    require(int64_t(placement.layers.size()) == trace.layers,
            "the placement and the routing trace are for models of different depth");
    HitRate h;
    for (const RoutingTraceStep& s : trace.steps) {
        const auto& experts = placement.layers[size_t(s.layer)].experts;
        for (const int32_t id : s.ids) {
            ++h.lookups;
            h.hits += size_t(id) < experts.size() && experts[size_t(id)] == Device::Gpu;
        }
    }
    return h;
}

HitRate simulate_expert_cache(const RoutingTrace& trace, int64_t slots, CachePolicy policy) {
    require(slots >= 0, "cache slots must not be negative");
    const size_t E = size_t(trace.experts);
    // Per layer and expert: resident, last use (a clock of lookups), use count.
    std::vector<std::vector<uint8_t>> resident(size_t(trace.layers), std::vector<uint8_t>(E, 0));
    std::vector<std::vector<uint64_t>> last(size_t(trace.layers), std::vector<uint64_t>(E, 0));
    std::vector<std::vector<uint64_t>> uses(size_t(trace.layers), std::vector<uint64_t>(E, 0));
    std::vector<int64_t> filled(size_t(trace.layers), 0);
    HitRate h;
    uint64_t clock = 0;
    for (const RoutingTraceStep& s : trace.steps) {
        auto& res = resident[size_t(s.layer)];
        auto& lst = last[size_t(s.layer)];
        auto& cnt = uses[size_t(s.layer)];
        for (const int32_t id : s.ids) {
            ++h.lookups;
            ++clock;
            ++cnt[size_t(id)];
            lst[size_t(id)] = clock;
            if (res[size_t(id)]) {
                ++h.hits;
                continue;
            }
            if (slots == 0) continue;
            if (filled[size_t(s.layer)] < slots) {
                ++filled[size_t(s.layer)];
            } else {  // evict the resident expert the policy values least (ties: lowest id)
                size_t victim = E;
                uint64_t best = std::numeric_limits<uint64_t>::max();
                for (size_t e = 0; e < E; ++e) {
                    if (!res[e] || e == size_t(id)) continue;
                    const uint64_t v = policy == CachePolicy::Lru ? lst[e] : cnt[e];
                    if (v < best) {
                        best = v;
                        victim = e;
                    }
                }
                res[victim] = 0;
            }
            res[size_t(id)] = 1;
        }
    }
    return h;
}

}  // namespace moe
