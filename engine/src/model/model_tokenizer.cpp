#include "model/model_tokenizer.h"

#include <filesystem>

#include "core/error.h"

namespace moe {

GgufVocab read_gguf_vocab(const GgufFile& f) {
    GgufVocab v;
    v.model = f.require_string("tokenizer.ggml.model");
    v.pre = f.get_string("tokenizer.ggml.pre", "default");
    v.tokens = f.require_string_array("tokenizer.ggml.tokens");
    for (double s : f.get_float_array("tokenizer.ggml.scores")) v.scores.push_back(float(s));
    for (int64_t t : f.get_int_array("tokenizer.ggml.token_type"))
        v.token_type.push_back(int32_t(t));
    v.merges = f.get_string_array("tokenizer.ggml.merges");
    auto id = [&](const char* key) -> std::optional<int32_t> {
        if (!f.has(key)) return std::nullopt;
        return int32_t(f.get_int(key, -1));
    };
    v.bos_id = id("tokenizer.ggml.bos_token_id");
    v.eos_id = id("tokenizer.ggml.eos_token_id");
    v.unk_id = id("tokenizer.ggml.unknown_token_id");
    v.pad_id = id("tokenizer.ggml.padding_token_id");
    v.eot_id = id("tokenizer.ggml.eot_token_id");
    auto flag = [&](const char* key) -> std::optional<bool> {
        if (!f.has(key)) return std::nullopt;
        return f.get_bool(key, false);
    };
    v.add_bos = flag("tokenizer.ggml.add_bos_token");
    v.add_eos = flag("tokenizer.ggml.add_eos_token");
    v.add_space_prefix = flag("tokenizer.ggml.add_space_prefix");
    return v;
}

std::unique_ptr<Tokenizer> load_model_tokenizer(const std::string& path) {
    if (std::filesystem::is_directory(path)) return load_tokenizer(path);
    if (path.ends_with(".gguf")) {
        const auto f = GgufFile::open(path);
        if (!f->has("tokenizer.ggml.model"))
            throw Error(path + ": has no tokenizer (tokenizer.ggml.model)");
        try {
            return tokenizer_from_gguf(read_gguf_vocab(*f));
        } catch (const Error& e) {
            throw Error(path + ": " + e.what());
        }
    }
    throw Error(path + ": expected a model folder or a .gguf file");
}

ChatTemplate load_model_chat_template(const std::string& path) {
    if (std::filesystem::is_directory(path)) return ChatTemplate::from_model_folder(path);
    const auto f = GgufFile::open(path);
    if (!f->has("tokenizer.chat_template"))
        throw Error(path + ": has no chat template (tokenizer.chat_template)");
    const auto tokens = f->get_string_array("tokenizer.ggml.tokens");
    auto token = [&](const char* key) -> std::optional<std::string> {
        const int64_t id = f->get_int(key, -1);
        if (id < 0 || id >= int64_t(tokens.size())) return std::nullopt;
        return tokens[size_t(id)];
    };
    return ChatTemplate(f->require_string("tokenizer.chat_template"),
                        path + " (tokenizer.chat_template)", token("tokenizer.ggml.bos_token_id"),
                        token("tokenizer.ggml.eos_token_id"));
}

}  // namespace moe
