#pragma once
// Manual field mapping for training data (issue 10): datasets in a known shape whose fields are
// named otherwise (Alpaca with "question"/"answer" for "instruction"/"output", ShareGPT turns
// with "role"/"content" for "from"/"value", messages under "dialog" ...) are read through a map
// from the name the loader expects to the dataset's own key. The map may also name the role
// values of conversational records (user_tag=customer, assistant_tag=agent, system_tag=sys)
// that the loader does not know by itself. Written "instruction=question,output=answer" on the
// command line and as a JSON object in the fine-tune config.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe::train {

struct FieldMap {
    std::map<std::string, std::string> names;  // expected name -> the dataset's key (or tag)

    bool empty() const { return names.empty(); }
    // The dataset's key for an expected one: the mapped name, else `expected` itself.
    std::string key(const std::string& expected) const;
    // A role tag (user_tag, assistant_tag, system_tag): the mapped value, "" when unset.
    std::string tag(const std::string& name) const;

    // "a=b,c=d" (spaces around names ignored). Throws moe::Error naming a malformed entry or
    // an unknown expected name.
    static FieldMap parse(const std::string& text);
    std::string to_string() const;  // the same form, sorted by expected name
    // A JSON object {"instruction": "question", ...}, or the string form. Throws moe::Error.
    static FieldMap from_json(const nlohmann::json& j);
    nlohmann::json to_json() const;
    // Every expected name is known and every dataset name non-empty. Throws moe::Error.
    void check() const;
};

// The names a map may set and what each is, in the order the wizard lists them.
const std::vector<std::pair<std::string, std::string>>& field_map_names();

}  // namespace moe::train
