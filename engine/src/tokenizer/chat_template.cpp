#include "tokenizer/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace moe {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw Error("cannot read " + p.string());
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

ojson read_json(const fs::path& p) {
    try {
        return ojson::parse(read_text(p));
    } catch (const nlohmann::json::exception& e) {
        throw Error(p.string() + ": invalid JSON: " + e.what());
    }
}

// A special token is a string or an AddedToken dict {"content": ...}.
std::optional<std::string> token_text(const ojson& config, const char* key) {
    auto it = config.find(key);
    if (it == config.end() || it->is_null()) return std::nullopt;
    if (it->is_string()) return it->get<std::string>();
    if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
        return (*it)["content"].get<std::string>();
    return std::nullopt;
}

// tokenizer_config.json's chat_template: a string, or named templates of which "default" is
// the one apply_chat_template uses when no name is given.
std::optional<std::string> template_from_config(const ojson& config, const fs::path& file) {
    auto it = config.find("chat_template");
    if (it == config.end() || it->is_null()) return std::nullopt;
    if (it->is_string()) return it->get<std::string>();
    if (it->is_array()) {
        std::string names;
        for (const auto& entry : *it) {
            if (!entry.is_object() || !entry.contains("name")) continue;
            std::string name = entry["name"].get<std::string>();
            if (name == "default" && entry.contains("template") && entry["template"].is_string())
                return entry["template"].get<std::string>();
            names += (names.empty() ? "" : ", ") + name;
        }
        throw Error(file.string() + ": chat_template lists named templates (" + names +
                    ") but none is named \"default\"");
    }
    throw Error(file.string() + ": chat_template must be a string or a list of {name, template}");
}

}  // namespace

ChatTemplate::ChatTemplate(const std::string& source, std::string name,
                           std::optional<std::string> bos_token,
                           std::optional<std::string> eos_token)
    : source_(source),
      template_(source, std::move(name)),
      bos_token_(std::move(bos_token)),
      eos_token_(std::move(eos_token)) {}

ChatTemplate ChatTemplate::from_model_folder(const std::string& dir) {
    const fs::path root(dir);
    const fs::path config_path = root / "tokenizer_config.json";
    ojson config = fs::exists(config_path) ? read_json(config_path) : ojson::object();
    std::optional<std::string> bos = token_text(config, "bos_token");
    std::optional<std::string> eos = token_text(config, "eos_token");

    if (fs::exists(root / "chat_template.jinja"))
        return ChatTemplate(read_text(root / "chat_template.jinja"),
                            "chat template (chat_template.jinja)", bos, eos);
    if (fs::exists(root / "chat_template.json")) {
        ojson j = read_json(root / "chat_template.json");
        if (auto t = template_from_config(j, root / "chat_template.json"))
            return ChatTemplate(*t, "chat template (chat_template.json)", bos, eos);
        throw Error((root / "chat_template.json").string() + ": no \"chat_template\" string in it");
    }
    if (auto t = template_from_config(config, config_path))
        return ChatTemplate(*t, "chat template (tokenizer_config.json)", bos, eos);
    throw Error(dir +
                ": no chat template found: looked for chat_template.jinja, "
                "chat_template.json and \"chat_template\" in tokenizer_config.json");
}

std::string ChatTemplate::apply(const nlohmann::json& messages,
                                const ChatTemplateOptions& options) const {
    return apply(ojson::parse(messages.dump()), options);
}

std::string ChatTemplate::apply(const ojson& messages, const ChatTemplateOptions& options) const {
    using jinja::CallArgs;
    using jinja::Value;
    // The variables transformers' render_jinja_template passes: messages, tools and documents
    // (None when absent), add_generation_prompt, the special tokens, then the extra kwargs.
    std::vector<std::pair<std::string, Value>> vars;
    vars.emplace_back("messages", Value::from_json(messages));
    vars.emplace_back("tools",
                      options.tools.is_null() ? Value::none() : Value::from_json(options.tools));
    vars.emplace_back("documents", Value::none());
    vars.emplace_back("add_generation_prompt", Value(options.add_generation_prompt));
    if (auto bos = options.bos_token ? options.bos_token : bos_token_)
        vars.emplace_back("bos_token", Value(*bos));
    if (auto eos = options.eos_token ? options.eos_token : eos_token_)
        vars.emplace_back("eos_token", Value(*eos));
    if (options.enable_thinking)
        vars.emplace_back("enable_thinking", Value(*options.enable_thinking));
    if (options.extra.is_object())
        for (auto it = options.extra.begin(); it != options.extra.end(); ++it)
            vars.emplace_back(it.key(), Value::from_json(it.value()));

    vars.emplace_back("raise_exception",
                      Value::function("raise_exception", [](CallArgs& a) -> Value {
                          throw jinja::Failure(a.get(0, "message").str());
                      }));
    std::optional<std::tm> now = options.now;
    vars.emplace_back(
        "strftime_now", Value::function("strftime_now", [now](CallArgs& a) {
            std::tm tm{};
            if (now) {
                tm = *now;
            } else {
                std::time_t t = std::time(nullptr);
                localtime_r(&t, &tm);
            }
            std::string format = a.get(0, "format").str();
            char buf[512];
            size_t n = format.empty() ? 0 : std::strftime(buf, sizeof(buf), format.c_str(), &tm);
            return Value(std::string(buf, n));
        }));
    return template_.render(vars);
}

}  // namespace moe
