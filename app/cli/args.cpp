#include "args.h"

#include <charconv>
#include <cmath>

#include "core/error.h"

namespace moecli {

Args::Args(const std::vector<std::string>& argv, const std::set<std::string>& flags,
           const std::set<std::string>& options) {
    for (size_t i = 0; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        if (a.size() > 2 && a.rfind("--", 0) == 0) {
            std::string name = a.substr(2), value;
            const bool inline_value = name.find('=') != std::string::npos;
            if (inline_value) {
                value = name.substr(name.find('=') + 1);
                name = name.substr(0, name.find('='));
            }
            if (flags.count(name)) {
                if (inline_value) throw moe::Error("option --" + name + " takes no value");
                flags_.insert(name);
            } else if (options.count(name)) {
                if (!inline_value) {
                    if (i + 1 >= argv.size())
                        throw moe::Error("option --" + name + " needs a value");
                    value = argv[++i];
                }
                values_[name] = value;
            } else {
                throw moe::Error("unknown option --" + name);
            }
        } else {
            positional_.push_back(a);
        }
    }
}

std::optional<std::string> Args::get(const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) return std::nullopt;
    return it->second;
}

std::string Args::get_or(const std::string& name, const std::string& fallback) const {
    return get(name).value_or(fallback);
}

long long Args::get_int(const std::string& name, long long fallback) const {
    const auto v = get(name);
    if (!v) return fallback;
    long long out = 0;
    const auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
    if (ec != std::errc() || p != v->data() + v->size()) {
        throw moe::Error("option --" + name + " expects an integer, got '" + *v + "'");
    }
    return out;
}

double Args::get_double(const std::string& name, double fallback) const {
    const auto v = get(name);
    if (!v) return fallback;
    try {
        size_t used = 0;
        const double d = std::stod(*v, &used);
        if (used != v->size() || !std::isfinite(d)) throw std::invalid_argument(*v);
        return d;
    } catch (const std::exception&) {
        throw moe::Error("option --" + name + " expects a number, got '" + *v + "'");
    }
}

moe::LoadOptions load_options(const Args& args) {
    moe::LoadOptions o;
    o.bf16_rope_frequencies = args.flag("rope-freq-bf16");
    o.llama_cpp_attention = args.flag("llamacpp-attention");
    o.expert_format = args.get_or("expert-format", "auto");
    o.lora_path = args.get_or("lora", "");
    o.lora_scale = float(args.get_double("lora-scale", 1.0));
    if (args.has("lora-scale") && o.lora_path.empty())
        throw moe::Error("--lora-scale needs --lora");
    o.deferred_experts = args.get_int("defer-experts", 0);
    return o;
}

std::vector<int32_t> parse_id_list(const std::string& text, const std::string& option) {
    std::vector<int32_t> ids;
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        std::string item = text.substr(start, end - start);
        while (!item.empty() && item.front() == ' ') item.erase(item.begin());
        while (!item.empty() && item.back() == ' ') item.pop_back();
        int32_t v = 0;
        const auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
        if (item.empty() || ec != std::errc() || p != item.data() + item.size() || v < 0) {
            throw moe::Error("option --" + option + " expects comma-separated token ids, got '" +
                             item + "'");
        }
        ids.push_back(v);
        start = end + 1;
    }
    return ids;
}

}  // namespace moecli
