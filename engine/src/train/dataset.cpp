#include "train/dataset.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "core/error.h"

namespace moe::train {

namespace {

using json = nlohmann::ordered_json;

// One record of the file with where it came from.
struct Record {
    json value;          // a JSON object, or a string for plain text
    std::string origin;  // file:line
};

std::vector<Record> read_records(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open the dataset");
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    std::vector<Record> out;
    const bool is_txt = path.ends_with(".txt") || path.ends_with(".md");
    if (is_txt) {
        // Documents separated by blank lines.
        std::istringstream lines(text);
        std::string line, doc;
        int64_t n = 0, start = 0;
        const auto flush = [&] {
            if (!doc.empty()) out.push_back({json(doc), path + ":" + std::to_string(start)});
            doc.clear();
        };
        while (std::getline(lines, line)) {
            ++n;
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.find_first_not_of(" \t") == std::string::npos) {
                flush();
                continue;
            }
            if (doc.empty()) start = n;
            doc += doc.empty() ? line : "\n" + line;
        }
        flush();
        return out;
    }
    const size_t first = text.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && text[first] == '[') {  // a JSON array of records
        json arr;
        try {
            arr = json::parse(text);
        } catch (const json::exception& e) {
            throw Error(path + ": not valid JSON: " + e.what());
        }
        for (size_t i = 0; i < arr.size(); ++i)
            out.push_back({arr[i], path + ": record " + std::to_string(i + 1)});
        return out;
    }
    std::istringstream lines(text);  // JSONL
    std::string line;
    int64_t n = 0;
    while (std::getline(lines, line)) {
        ++n;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        try {
            out.push_back({json::parse(line), path + ":" + std::to_string(n)});
        } catch (const json::exception& e) {
            throw Error(path + ":" + std::to_string(n) + ": not a JSON record: " + e.what());
        }
    }
    return out;
}

DataFormat detect(const Record& r, const FieldMap& fm) {
    if (r.value.is_string()) return DataFormat::Text;
    if (!r.value.is_object())
        throw Error(r.origin + ": a record must be a JSON object (or text in a .txt file)");
    if (r.value.contains(fm.key("messages"))) return DataFormat::Messages;
    if (r.value.contains(fm.key("conversations"))) return DataFormat::ShareGPT;
    if (r.value.contains(fm.key("instruction"))) return DataFormat::Alpaca;
    if (r.value.contains(fm.key("text"))) return DataFormat::Text;
    std::string keys;
    for (const auto& [k, v] : r.value.items()) keys += (keys.empty() ? "\"" : ", \"") + k + "\"";
    throw Error(r.origin + ": cannot tell the format: expected \"" + fm.key("messages") + "\", \"" +
                fm.key("conversations") + "\", \"" + fm.key("instruction") + "\" or \"" +
                fm.key("text") + "\", found " + (keys.empty() ? "no keys" : keys) +
                " (map the fields, e.g. --field-map instruction=question,output=answer)");
}

// `expected` is the loader's name for the field; the record is read under the map's name.
std::string field(const Record& r, const json& obj, const FieldMap& fm, const char* expected,
                  bool required = true) {
    const std::string key = fm.key(expected);
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) {
        if (required)
            throw Error(r.origin + ": missing \"" + key + "\"" +
                        (key == expected ? "" : std::string(" (mapped from ") + expected + ")"));
        return {};
    }
    if (!it->is_string()) throw Error(r.origin + ": \"" + key + "\" must be a string");
    return it->get<std::string>();
}

// A turn's role value as a chat role: the map's tags first, then the names each format uses
// ("" when none matches).
std::string role_of(const std::string& v, DataFormat f, const FieldMap& fm) {
    for (const char* role : {"user", "assistant", "system"})
        if (const std::string t = fm.tag(std::string(role) + "_tag"); !t.empty() && v == t)
            return role;
    if (f == DataFormat::Messages)
        return v == "system" || v == "user" || v == "assistant" || v == "tool" ? v : "";
    return v == "human" || v == "user"      ? "user"
           : v == "gpt" || v == "assistant" ? "assistant"
           : v == "system"                  ? "system"
                                            : "";
}

// The conversation of a record as chat messages.
json messages_of(const Record& r, DataFormat f, const FieldMap& fm) {
    json msgs = json::array();
    const auto add = [&](const std::string& role, const std::string& content) {
        msgs.push_back({{"role", role}, {"content", content}});
    };
    if (f == DataFormat::Alpaca) {
        if (const std::string sys = field(r, r.value, fm, "system", false); !sys.empty())
            add("system", sys);
        std::string user = field(r, r.value, fm, "instruction");
        if (const std::string input = field(r, r.value, fm, "input", false); !input.empty())
            user += "\n\n" + input;
        add("user", user);
        add("assistant", field(r, r.value, fm, "output"));
        return msgs;
    }
    const bool openai = f == DataFormat::Messages;
    const std::string list_key = fm.key(openai ? "messages" : "conversations");
    const auto list_it = r.value.find(list_key);
    if (list_it == r.value.end() || !list_it->is_array() || list_it->empty())
        throw Error(r.origin + ": \"" + list_key + "\" must be a non-empty list");
    const json& list = *list_it;
    const char* role_field = openai ? "role" : "from";
    for (size_t i = 0; i < list.size(); ++i) {
        const json& m = list[i];
        if (!m.is_object())
            throw Error(r.origin + ": message " + std::to_string(i + 1) + " is not an object");
        const std::string v = field(r, m, fm, role_field);
        const std::string role = role_of(v, f, fm);
        if (role.empty())
            throw Error(r.origin + ": message " + std::to_string(i + 1) + " has \"" +
                        fm.key(role_field) + "\" '" + v + "' (expected " +
                        (openai ? "system, user, assistant or tool" : "human, gpt or system") +
                        ", or map it: user_tag=" + v + ", assistant_tag=" + v +
                        " or system_tag=" + v + ")");
        add(role, field(r, m, fm, openai ? "content" : "value"));
    }
    bool any_assistant = false;
    for (const auto& m : msgs) any_assistant |= m["role"] == "assistant";
    if (!any_assistant) throw Error(r.origin + ": the conversation has no assistant message");
    return msgs;
}

// Tokens of a conversation, the assistant's marked. The conversation is rendered once (a
// template may render a turn differently when it is the last, as Qwen3's thinking blocks, so
// renderings of shorter conversations are not prefixes of it); each assistant message's text
// is found in the rendering, in order, and its tokens, with the end-of-turn special token that
// follows, carry labels.
Example conversation_example(const Record& r, const json& msgs, const Tokenizer& tok,
                             const ChatTemplate& tmpl, bool train_on_prompt) {
    Example ex;
    ex.origin = r.origin;
    const std::string text = tmpl.apply(msgs);
    ex.ids = tok.encode(text);
    if (train_on_prompt) {
        ex.labels = ex.ids;
        return ex;
    }
    ex.labels.assign(ex.ids.size(), -100);
    // Where each token starts in `text` (special tokens appear there as their strings).
    std::vector<size_t> start(ex.ids.size() + 1, 0);
    for (size_t i = 0; i < ex.ids.size(); ++i) {
        const int32_t id = ex.ids[i];
        const size_t len =
            tok.is_special(id) ? tok.id_to_token(id).size() : tok.token_bytes(id).size();
        start[i + 1] = start[i] + len;
    }
    if (start.back() != text.size())
        throw Error(r.origin +
                    ": cannot map the tokens back onto the chat template's text "
                    "(use --train-on-prompt)");
    size_t cursor = 0;
    for (size_t m = 0; m < msgs.size(); ++m) {
        if (msgs[m]["role"] != "assistant") continue;
        const std::string content = msgs[m]["content"].get<std::string>();
        const size_t pos = text.find(content, cursor);
        if (content.empty() || pos == std::string::npos)
            throw Error(r.origin + ": the chat template does not render assistant message " +
                        std::to_string(m + 1) + " verbatim (use --train-on-prompt)");
        const size_t end = pos + content.size();
        cursor = end;
        size_t last = 0;
        bool any = false;
        for (size_t i = 0; i < ex.ids.size(); ++i) {
            if (start[i + 1] > pos && start[i] < end) {
                ex.labels[i] = ex.ids[i];
                last = i;
                any = true;
            }
        }
        if (any && last + 1 < ex.ids.size() && tok.is_special(ex.ids[last + 1]))
            ex.labels[last + 1] = ex.ids[last + 1];  // the end of the turn
    }
    return ex;
}

}  // namespace

DataFormat parse_data_format(const std::string& s) {
    if (s == "auto") return DataFormat::Auto;
    if (s == "text") return DataFormat::Text;
    if (s == "alpaca") return DataFormat::Alpaca;
    if (s == "messages") return DataFormat::Messages;
    if (s == "sharegpt") return DataFormat::ShareGPT;
    throw Error("dataset format '" + s + "': expected auto, text, alpaca, messages or sharegpt");
}

const char* data_format_name(DataFormat f) {
    switch (f) {
        case DataFormat::Auto:
            return "auto";
        case DataFormat::Text:
            return "text";
        case DataFormat::Alpaca:
            return "alpaca";
        case DataFormat::Messages:
            return "messages";
        case DataFormat::ShareGPT:
            return "sharegpt";
    }
    return "?";
}

Dataset load_dataset(const std::string& path, const Tokenizer& tok, const ChatTemplate* tmpl,
                     const DatasetOptions& o) {
    require(o.cutoff >= 2, "dataset: the cut-off length must be at least 2 tokens");
    require(o.eval_fraction >= 0.0 && o.eval_fraction < 1.0,
            "dataset: the eval fraction must be in [0, 1)");
    const std::vector<Record> records = read_records(path);
    if (records.empty()) throw Error(path + ": the dataset holds no records");
    Dataset ds;
    ds.format = o.format == DataFormat::Auto ? detect(records.front(), o.fields) : o.format;
    ds.records = int64_t(records.size());
    const bool chat = ds.format != DataFormat::Text;
    if (chat && !tmpl)
        throw Error(path + ": " + data_format_name(ds.format) +
                    " records need a chat template, and this model has none (use plain text)");
    std::vector<Example> all;
    for (const Record& r : records) {
        Example ex;
        if (!chat) {
            const std::string text = r.value.is_string() ? r.value.get<std::string>()
                                                         : field(r, r.value, o.fields, "text");
            if (text.empty()) throw Error(r.origin + ": empty text");
            ex.origin = r.origin;
            ex.ids = tok.encode(text, true);
            if (tok.special_ids().eos >= 0 &&
                (ex.ids.empty() || ex.ids.back() != tok.special_ids().eos))
                ex.ids.push_back(tok.special_ids().eos);
            ex.labels = ex.ids;
        } else {
            ex = conversation_example(r, messages_of(r, ds.format, o.fields), tok, *tmpl,
                                      o.train_on_prompt);
        }
        ds.record_tokens.push_back(int64_t(ex.ids.size()));
        if (int64_t(ex.ids.size()) > o.cutoff && !o.packing) {
            ex.ids.resize(size_t(o.cutoff));
            ex.labels.resize(size_t(o.cutoff));
            ++ds.truncated;
        }
        all.push_back(std::move(ex));
    }
    // The split is by record, before packing (no record is in both parts).
    std::mt19937_64 rng(o.seed);
    std::shuffle(all.begin(), all.end(), rng);
    const size_t n_eval = size_t(double(all.size()) * o.eval_fraction);
    ds.eval.assign(std::make_move_iterator(all.begin()),
                   std::make_move_iterator(all.begin() + std::ptrdiff_t(n_eval)));
    std::vector<Example> train(std::make_move_iterator(all.begin() + std::ptrdiff_t(n_eval)),
                               std::make_move_iterator(all.end()));
    if (o.packing) {
        std::vector<Example> packed;
        Example cur;
        for (const Example& ex : train) {
            if (cur.ids.empty()) cur.origin = ex.origin;
            for (size_t i = 0; i < ex.ids.size(); ++i) {
                cur.ids.push_back(ex.ids[i]);
                cur.labels.push_back(ex.labels[i]);
                if (int64_t(cur.ids.size()) == o.cutoff) {
                    packed.push_back(std::move(cur));
                    cur = Example{};
                    cur.origin = ex.origin;
                }
            }
        }
        if (cur.ids.size() >= 2) packed.push_back(std::move(cur));
        train = std::move(packed);
    }
    // A sequence needs a next-token label somewhere (labels are shifted by one).
    const auto useful = [](const Example& e) {
        for (size_t t = 1; t < e.labels.size(); ++t)
            if (e.labels[t] != -100) return true;
        return false;
    };
    for (const auto& e : train)
        if (!useful(e))
            throw Error(e.origin +
                        ": no token of this record is trained on (after the cut-off "
                        "of " +
                        std::to_string(o.cutoff) + " tokens)");
    ds.train = std::move(train);
    std::erase_if(ds.eval, [&](const Example& e) { return !useful(e); });
    return ds;
}

DatasetKeys dataset_keys(const std::string& path) {
    const std::vector<Record> records = read_records(path);
    if (records.empty()) throw Error(path + ": the dataset holds no records");
    DatasetKeys k;
    const json& first = records.front().value;
    if (!first.is_object()) return k;  // plain text: nothing to map
    for (const auto& [key, value] : first.items()) {
        k.record.push_back(key);
        if (!k.turn.empty() || !value.is_array()) continue;
        for (const json& turn : value) {
            if (!turn.is_object()) continue;
            for (const auto& [tk, tv] : turn.items())
                if (std::find(k.turn.begin(), k.turn.end(), tk) == k.turn.end())
                    k.turn.push_back(tk);
        }
    }
    return k;
}

}  // namespace moe::train
