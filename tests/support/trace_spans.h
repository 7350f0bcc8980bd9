#pragma once
// Synthetic trace spans for the tracing and profiler tests.
#include <cstdint>
#include <string>
#include <utility>

#include "core/trace.h"

namespace moetest {

inline moe::trace::Span span(int32_t lane, moe::trace::Stage stage, int64_t begin, int64_t end,
                             int32_t layer = -1, int64_t token = -1, std::string name = "s") {
    moe::trace::Span s;
    s.lane = lane;
    s.stage = stage;
    s.begin_ns = begin;
    s.end_ns = end;
    s.layer = layer;
    s.token = token;
    s.name = std::move(name);
    return s;
}

}  // namespace moetest
