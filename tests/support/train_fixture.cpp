#include "train_fixture.h"

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "tokenizer/unicode.h"

namespace moetest {

namespace fs = std::filesystem;

std::string make_trainable_model(const std::string& data_dir, const std::string& dir) {
    const fs::path src = fs::path(data_dir) / "hf-tiny" / "qwen3_moe-s1";
    if (!fs::exists(src / "model.safetensors"))
        throw std::runtime_error(src.string() + ": fixture absent");
    fs::create_directories(dir);
    for (const char* f : {"config.json", "model.safetensors"})
        fs::copy_file(src / f, fs::path(dir) / f, fs::copy_options::overwrite_existing);
    nlohmann::json vocab = nlohmann::json::object();
    for (int b = 0; b < 256; ++b) vocab[moe::utf8::byte_to_char(static_cast<unsigned char>(b))] = b;
    nlohmann::json added = nlohmann::json::array();
    int id = 256;
    for (const char* t : {"<|im_start|>", "<|im_end|>", "<|endoftext|>"})
        added.push_back({{"id", id++}, {"content", t}, {"special", true}, {"normalized", false}});
    const nlohmann::json tok = {
        {"version", "1.0"},
        {"added_tokens", added},
        {"normalizer", nullptr},
        {"pre_tokenizer",
         {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
        {"post_processor", nullptr},
        {"decoder", {{"type", "ByteLevel"}}},
        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}}};
    std::ofstream(fs::path(dir) / "tokenizer.json") << tok.dump();
    const nlohmann::json cfg = {
        {"eos_token", "<|im_end|>"},
        {"chat_template",
         "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
         "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"}};
    std::ofstream(fs::path(dir) / "tokenizer_config.json") << cfg.dump();
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
