#include "golden.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "formats/safetensors.h"

namespace moetest {

namespace {

template <typename T>
std::vector<T> copy_tensor(const moe::SafetensorsFile& f, const std::string& name,
                           moe::DType want) {
    const auto it = f.tensors().find(name);
    if (it == f.tensors().end()) throw moe::Error(f.path() + ": missing '" + name + "'");
    if (it->second.dtype != want)
        throw moe::Error(f.path() + ": '" + name + "' has the wrong dtype");
    std::vector<T> v(size_t(it->second.numel()));
    std::copy_n(reinterpret_cast<const T*>(it->second.data), v.size(), v.data());
    return v;
}

}  // namespace

Golden read_golden(const std::string& path) {
    const auto f = moe::SafetensorsFile::open(path);
    Golden g;
    g.input_ids = copy_tensor<int32_t>(*f, "input_ids", moe::DType::I32);
    g.logits = copy_tensor<float>(*f, "logits", moe::DType::F32);
    g.greedy_ids = copy_tensor<int32_t>(*f, "greedy_ids", moe::DType::I32);
    g.vocab = f->tensors().at("logits").dim(1);
    return g;
}

double relative_max_error(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return INFINITY;
    double err = 0.0, ref = 0.0;
    for (size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(a[i])) return INFINITY;
        err = std::max(err, double(std::fabs(a[i] - b[i])));
        ref = std::max(ref, double(std::fabs(b[i])));
    }
    return err / ref;
}

std::vector<float> prompt_logits(moe::Model& model, const std::vector<int32_t>& ids) {
    moe::KvCache cache = model.new_cache();
    std::vector<float> logits;
    model.forward(ids, cache, logits, /*all_positions=*/true);
    return logits;
}

std::vector<float> prompt_logits(const std::string& model_path, const std::vector<int32_t>& ids,
                                 const moe::LoadOptions& options) {
    auto model = moe::load_model(model_path, options);
    return prompt_logits(*model, ids);
}

std::vector<std::string> fixture_dirs(const std::string& root) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(root, ec)) {
        if (e.is_directory() && std::filesystem::exists(e.path() / "golden.safetensors")) {
            out.push_back(e.path().string());
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

LoraGolden read_lora_golden(const std::string& dir) {
    LoraGolden g;
    const auto golden = moe::SafetensorsFile::open(dir + "/golden.safetensors");
    g.file = moe::SafetensorsFile::open(dir + "/lora_golden.safetensors");
    g.ids = tensor_values<int32_t>(*golden, "input_ids");
    g.labels = tensor_values<int32_t>(*g.file, "labels");
    g.loss = tensor_values<float>(*g.file, "loss").at(0);
    return g;
}

}  // namespace moetest
