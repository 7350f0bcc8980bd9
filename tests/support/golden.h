#pragma once
// Reading reference outputs (golden.safetensors) for the model tests. Qt-free.
#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"

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

// The logits of every position of `ids`, run as one prompt from an empty cache.
std::vector<float> prompt_logits(moe::Model& model, const std::vector<int32_t>& ids);
std::vector<float> prompt_logits(const std::string& model_path, const std::vector<int32_t>& ids,
                                 const moe::LoadOptions& options);

// Every folder under `root` (one level) that holds golden.safetensors, sorted.
std::vector<std::string> fixture_dirs(const std::string& root);

}  // namespace moetest
