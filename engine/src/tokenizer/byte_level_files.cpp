#include "tokenizer/byte_level_files.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/file_util.h"
#include "tokenizer/unicode.h"

namespace moe {

void write_byte_level_tokenizer(const std::string& dir, const ByteLevelTokenizerSpec& spec) {
    namespace fs = std::filesystem;
    using json = nlohmann::json;
    json vocab = json::object();
    for (int b = 0; b < 256; ++b) vocab[utf8::byte_to_char(static_cast<unsigned char>(b))] = b;
    const int first_plain = 256 + int(spec.specials.size());
    for (int id = first_plain; id < spec.vocab_size; ++id) vocab["t" + std::to_string(id)] = id;
    json added = json::array();
    for (size_t i = 0; i < spec.specials.size(); ++i) {
        added.push_back({{"id", 256 + int(i)},
                         {"content", spec.specials[i]},
                         {"special", true},
                         {"single_word", false},
                         {"lstrip", false},
                         {"rstrip", false},
                         {"normalized", false}});
    }
    const json byte_level = {{"type", "ByteLevel"},
                             {"add_prefix_space", false},
                             {"trim_offsets", true},
                             {"use_regex", true}};
    const json tokenizer = {
        {"version", "1.0"},
        {"added_tokens", added},
        {"normalizer", nullptr},
        {"pre_tokenizer", byte_level},
        {"post_processor", nullptr},
        {"decoder", byte_level},
        {"model",
         {{"type", "BPE"}, {"byte_fallback", false}, {"vocab", vocab}, {"merges", json::array()}}}};
    write_file_atomically((fs::path(dir) / "tokenizer.json").string(), tokenizer.dump(1));
    const json config = {
        {"eos_token", spec.eos_token},
        {"add_bos_token", false},
        {"chat_template",
         "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
         "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"}};
    write_file_atomically((fs::path(dir) / "tokenizer_config.json").string(), config.dump(1));
}

}  // namespace moe
