#pragma once
// Reading reference outputs (golden.safetensors) for the model tests. Qt-free.
#include <cstdint>
#include <string>
#include <vector>

#include <memory>

#include "formats/safetensors.h"
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

// A tensor's values as stored (T: int32_t for I32, float for F32 tensors).
template <class T>
std::vector<T> tensor_values(const moe::SafetensorsFile& f, const std::string& name) {
    const auto& t = f.tensors().at(name);
    const T* p = reinterpret_cast<const T*>(t.data);
    return std::vector<T>(p, p + t.numel());
}

// An hf-tiny fixture's LoRA references: the golden input ids, lora_golden.safetensors' labels
// and loss, and the file itself (PEFT's gradients by tensor name).
struct LoraGolden {
    std::vector<int32_t> ids, labels;
    double loss = 0;
    std::shared_ptr<moe::SafetensorsFile> file;
};
LoraGolden read_lora_golden(const std::string& fixture_dir);

// Every folder under `root` (one level) that holds golden.safetensors, sorted.
std::vector<std::string> fixture_dirs(const std::string& root);

}  // namespace moetest
