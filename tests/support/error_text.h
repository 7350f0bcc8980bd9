#pragma once
// The message of the moe::Error a call throws ("" when it throws none), for tests that check
// that an error names what is wrong.
#include <QString>
#include <functional>

#include "core/error.h"

namespace moetest {

inline QString error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const moe::Error& e) {
        return QString::fromUtf8(e.what());
    }
    return {};
}

}  // namespace moetest
