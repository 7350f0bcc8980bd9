#include "train/field_map.h"

#include <sstream>

#include "core/error.h"

namespace moe::train {

namespace {

std::string trim(const std::string& s) {
    const size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
    return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

bool known(const std::string& name) {
    for (const auto& [n, what] : field_map_names())
        if (n == name) return true;
    return false;
}

std::string known_list() {
    std::string s;
    for (const auto& [n, what] : field_map_names()) s += (s.empty() ? "" : ", ") + n;
    return s;
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& field_map_names() {
    static const std::vector<std::pair<std::string, std::string>> names = {
        {"text", "plain text: the document"},
        {"instruction", "Alpaca: the instruction (the user's turn)"},
        {"input", "Alpaca: optional input appended to the instruction"},
        {"output", "Alpaca: the answer (the assistant's turn)"},
        {"system", "Alpaca: optional system prompt"},
        {"messages", "messages: the list of turns"},
        {"role", "messages: a turn's role"},
        {"content", "messages: a turn's text"},
        {"conversations", "ShareGPT: the list of turns"},
        {"from", "ShareGPT: a turn's speaker"},
        {"value", "ShareGPT: a turn's text"},
        {"user_tag", "the role value that means the user (besides user/human)"},
        {"assistant_tag", "the role value that means the assistant (besides assistant/gpt)"},
        {"system_tag", "the role value that means the system prompt (besides system)"},
    };
    return names;
}

std::string FieldMap::key(const std::string& expected) const {
    const auto it = names.find(expected);
    return it == names.end() ? expected : it->second;
}

std::string FieldMap::tag(const std::string& name) const {
    const auto it = names.find(name);
    return it == names.end() ? std::string() : it->second;
}

FieldMap FieldMap::parse(const std::string& text) {
    FieldMap m;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (trim(item).empty()) continue;
        const size_t eq = item.find('=');
        if (eq == std::string::npos)
            throw Error("field map entry '" + trim(item) +
                        "': expected EXPECTED=DATASET_KEY, e.g. instruction=question");
        m.names[trim(item.substr(0, eq))] = trim(item.substr(eq + 1));
    }
    m.check();
    return m;
}

std::string FieldMap::to_string() const {
    std::string s;
    for (const auto& [expected, mine] : names) s += (s.empty() ? "" : ",") + expected + "=" + mine;
    return s;
}

FieldMap FieldMap::from_json(const nlohmann::json& j) {
    if (j.is_null()) return {};
    if (j.is_string()) return parse(j.get<std::string>());
    if (!j.is_object())
        throw Error("field map: expected an object {\"instruction\": \"question\", ...}");
    FieldMap m;
    for (const auto& [expected, mine] : j.items()) {
        if (!mine.is_string())
            throw Error("field map: the value of \"" + expected + "\" must be a string");
        m.names[expected] = mine.get<std::string>();
    }
    m.check();
    return m;
}

nlohmann::json FieldMap::to_json() const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [expected, mine] : names) j[expected] = mine;
    return j;
}

void FieldMap::check() const {
    for (const auto& [expected, mine] : names) {
        if (!known(expected))
            throw Error("field map: unknown field '" + expected + "' (known: " + known_list() +
                        ")");
        if (mine.empty()) throw Error("field map: '" + expected + "' is mapped to nothing");
    }
}

}  // namespace moe::train
