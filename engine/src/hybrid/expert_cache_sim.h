#pragma once
// Offline evaluation of expert placements on a routing trace (issue 8): the share of routed
// (token, expert) assignments a static placement serves from the GPU, and the hit rate of a
// dynamic expert cache of N slots per MoE layer refreshed as generation goes (LRU or LFU: an
// expert missing from the cache is brought in, evicting the least recently or least frequently
// used one). Replaying the same trace always gives the same figures.
#include <cstdint>
#include <string>

#include "hybrid/placement.h"
#include "model/routing_trace.h"

namespace moe {

enum class CachePolicy { Lru, Lfu };
CachePolicy parse_cache_policy(const std::string& s);  // "lru", "lfu"

struct HitRate {
    uint64_t hits = 0, lookups = 0;
    double rate() const { return lookups ? double(hits) / double(lookups) : 0.0; }
};

// Assignments whose expert the placement keeps on the GPU.
HitRate placement_hit_rate(const RoutingTrace& trace, const Placement& placement);

// A cache of `slots` experts per MoE layer, empty at the start of the trace.
HitRate simulate_expert_cache(const RoutingTrace& trace, int64_t slots, CachePolicy policy);

}  // namespace moe
