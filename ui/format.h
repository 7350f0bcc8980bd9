#pragma once
// How the app writes sizes: GiB with one decimal ("22.9 GiB"), as the engine's messages do.
#include <QString>
#include <cstdint>

namespace moeui {

inline QString gib(uint64_t bytes, int decimals = 1) {
    return QString::number(double(bytes) / double(uint64_t(1) << 30), 'f', decimals) + " GiB";
}

}  // namespace moeui
