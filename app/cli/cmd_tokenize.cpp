// tokenize / detokenize / template: the text side of a model, for users debugging prompts and
// for tests against Hugging Face and llama.cpp.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "model/model_tokenizer.h"

namespace moecli {

int cmd_tokenize(const std::vector<std::string>& argv) {
    const Args args(argv, {"add-special"}, {"text"});
    if (args.positional().size() != 1 || !args.has("text")) {
        throw moe::Error("usage: moestudio-cli tokenize TOKENIZER --text TEXT [--add-special]");
    }
    const auto tok = moe::load_model_tokenizer(args.positional()[0]);
    const auto ids = tok->encode(*args.get("text"), args.flag("add-special"));
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) {
        if (i) line += ',';
        line += std::to_string(ids[i]);
    }
    std::printf("%s\n", line.c_str());
    return 0;
}

int cmd_detokenize(const std::vector<std::string>& argv) {
    const Args args(argv, {"skip-special"}, {"ids"});
    if (args.positional().size() != 1 || !args.has("ids")) {
        throw moe::Error("usage: moestudio-cli detokenize TOKENIZER --ids 1,2,3 [--skip-special]");
    }
    const auto tok = moe::load_model_tokenizer(args.positional()[0]);
    const auto ids =
        args.get("ids")->empty() ? std::vector<int32_t>{} : parse_id_list(*args.get("ids"), "ids");
    for (int32_t id : ids) {
        if (id >= tok->vocab_size()) {
            throw moe::Error("token id " + std::to_string(id) + " is outside the vocabulary of " +
                             std::to_string(tok->vocab_size()));
        }
    }
    std::fputs(tok->decode(ids, args.flag("skip-special")).c_str(), stdout);
    return 0;
}

int cmd_template(const std::vector<std::string>& argv) {
    const Args args(argv, {"add-generation-prompt", "no-thinking", "thinking"},
                    {"messages", "bos", "eos", "template", "tools", "kwargs"});
    if (args.positional().size() != 1 || !args.has("messages")) {
        throw moe::Error(
            "usage: moestudio-cli template TOKENIZER --messages FILE.json "
            "[--add-generation-prompt] [--no-thinking] [--bos TEXT --eos TEXT] "
            "[--template FILE.jinja] [--tools FILE.json] [--kwargs JSON]");
    }
    auto read = [](const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw moe::Error(path + ": cannot open file");
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    };
    auto parse = [&](const std::string& path) {
        try {
            return nlohmann::ordered_json::parse(read(path));
        } catch (const nlohmann::json::exception& e) {
            throw moe::Error(path + ": not valid JSON: " + e.what());
        }
    };
    const auto messages = parse(*args.get("messages"));
    if (!messages.is_array())
        throw moe::Error(*args.get("messages") + ": expected an array of {role, content}");
    const std::string path = args.positional()[0];
    std::optional<moe::ChatTemplate> tpl;
    if (args.has("template")) {
        std::optional<std::string> bos, eos;
        try {
            const auto model_tpl = moe::load_model_chat_template(path);
            bos = model_tpl.bos_token();
            eos = model_tpl.eos_token();
        } catch (const moe::Error&) {
            // A template file alone is enough; special tokens then come from --bos/--eos.
        }
        tpl.emplace(read(*args.get("template")), *args.get("template"), bos, eos);
    } else {
        tpl.emplace(moe::load_model_chat_template(path));
    }
    moe::ChatTemplateOptions o;
    o.add_generation_prompt = args.flag("add-generation-prompt");
    if (args.has("bos")) o.bos_token = *args.get("bos");
    if (args.has("eos")) o.eos_token = *args.get("eos");
    if (args.flag("no-thinking")) o.enable_thinking = false;
    if (args.flag("thinking")) o.enable_thinking = true;
    if (args.has("tools")) o.tools = parse(*args.get("tools"));
    if (args.has("kwargs")) {
        try {
            o.extra = nlohmann::ordered_json::parse(*args.get("kwargs"));
        } catch (const nlohmann::json::exception& e) {
            throw moe::Error(std::string("--kwargs: not valid JSON: ") + e.what());
        }
    }
    std::fputs(tpl->apply(messages, o).c_str(), stdout);
    return 0;
}

}  // namespace moecli
