#pragma once
// How the app writes sizes: GiB with one decimal ("22.9 GiB"), as the engine's messages do;
// size_text() picks the unit for figures that may be small (a tiny model's experts).
#include <QString>
#include <cstdint>

namespace moeui {

inline QString gib(uint64_t bytes, int decimals = 1) {
    return QString::number(double(bytes) / double(uint64_t(1) << 30), 'f', decimals) + " GiB";
}

inline QString size_text(uint64_t bytes) {
    if (bytes >= (uint64_t(1) << 30)) return gib(bytes);
    if (bytes >= (uint64_t(1) << 20))
        return QString::number(double(bytes) / double(1 << 20), 'f', 1) + " MiB";
    return QString::number(double(bytes) / 1024.0, 'f', 1) + " KiB";
}

}  // namespace moeui
