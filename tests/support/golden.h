#pragma once
// Reading reference outputs (golden.safetensors) for the model tests. Qt-free.
#include <cstdint>
#include <string>
#include <vector>

namespace moetest {

struct Golden {
    std::vector<int32_t> input_ids;
    std::vector<float> logits;  // [n, vocab]
    std::vector<int32_t> greedy_ids;
    int64_t vocab = 0;
};

Golden read_golden(const std::string& path);

// max |a - b| / max |b|
double relative_max_error(const std::vector<float>& a, const std::vector<float>& b);

// Every folder under `root` (one level) that holds golden.safetensors, sorted.
std::vector<std::string> fixture_dirs(const std::string& root);

}  // namespace moetest
