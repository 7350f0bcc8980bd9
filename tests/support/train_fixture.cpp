#include "train_fixture.h"

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "tokenizer/byte_level_files.h"

namespace moetest {

namespace fs = std::filesystem;

std::string make_trainable_model(const std::string& data_dir, const std::string& dir) {
    const fs::path src = fs::path(data_dir) / "hf-tiny" / "qwen3_moe-s1";
    if (!fs::exists(src / "model.safetensors"))
        throw std::runtime_error(src.string() + ": fixture absent");
    fs::create_directories(dir);
    for (const char* f : {"config.json", "model.safetensors"})
        fs::copy_file(src / f, fs::path(dir) / f, fs::copy_options::overwrite_existing);
    moe::write_byte_level_tokenizer(
        dir, {{"<|im_start|>", "<|im_end|>", "<|endoftext|>"}, 0, "<|im_end|>"});
    return dir;
}

std::string alpaca_jsonl(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) {
        const nlohmann::json r = {{"instruction", "Count to " + std::to_string(i % 7 + 2) + "."},
                                  {"output", "Here: " + std::to_string(i % 7) + " and " +
                                                 std::to_string(i % 7 + 1) + ", done."}};
        s += r.dump() + "\n";
    }
    return s;
}

}  // namespace moetest
