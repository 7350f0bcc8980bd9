#pragma once
// Hugging Face chat templates: turns a list of chat messages into the prompt text a model was
// trained on, rendering the model's Jinja template exactly as transformers'
// apply_chat_template(tokenize=False) does.
#include <ctime>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/jinja/template.h"

namespace moe {

struct ChatTemplateOptions {
    bool add_generation_prompt = false;
    // Override the tokenizer's special tokens (from tokenizer_config.json); absent there and
    // here, the template sees them undefined, as transformers passes only tokens that exist.
    std::optional<std::string> bos_token;
    std::optional<std::string> eos_token;
    // JSON tool schemas ({"type": "function", "function": {...}}); null = no tools.
    nlohmann::ordered_json tools;
    // Passed only when set, so templates can test `enable_thinking is defined`.
    std::optional<bool> enable_thinking;
    // Other keyword arguments of apply_chat_template, e.g. {"reasoning_effort": "high"}.
    nlohmann::ordered_json extra = nlohmann::ordered_json::object();
    // The clock of strftime_now(); local time now when absent. Set it for reproducible output.
    std::optional<std::tm> now;
};

class ChatTemplate {
  public:
    // `name` prefixes errors: "<name>, line N: ...". Throws moe::Error on syntax errors.
    explicit ChatTemplate(const std::string& source, std::string name = "chat template",
                          std::optional<std::string> bos_token = std::nullopt,
                          std::optional<std::string> eos_token = std::nullopt);

    // Reads DIR/chat_template.jinja, else DIR/chat_template.json, else tokenizer_config.json's
    // "chat_template" (a string, or a list of {name, template} of which "default" is used),
    // plus bos_token/eos_token from tokenizer_config.json (strings or {"content": ...}).
    static ChatTemplate from_model_folder(const std::string& dir);

    // `messages`: [{"role": ..., "content": ..., ...}, ...]. Object keys keep their order
    // (tojson prints them as given), hence ordered_json; a plain nlohmann::json also works.
    // Throws moe::Error naming the template and line on errors, raise_exception() included.
    std::string apply(const nlohmann::ordered_json& messages,
                      const ChatTemplateOptions& options = {}) const;
    std::string apply(const nlohmann::json& messages,
                      const ChatTemplateOptions& options = {}) const;

    const std::optional<std::string>& bos_token() const { return bos_token_; }
    const std::optional<std::string>& eos_token() const { return eos_token_; }
    const std::string& source() const { return source_; }

  private:
    std::string source_;
    jinja::Template template_;
    std::optional<std::string> bos_token_;
    std::optional<std::string> eos_token_;
};

}  // namespace moe
