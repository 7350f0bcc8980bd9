#pragma once
// FNV-1a over bytes: a small, stable hash for keys and fingerprints (file names, sizes, option
// text) that must not change between builds or machines. Not for large payloads (byte loop).
#include <cstddef>
#include <cstdint>

namespace moe {

inline uint64_t fnv1a(const void* p, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

}  // namespace moe
