// Hugging Face tokenizer.json (+ tokenizer_config.json) behind the Tokenizer interface.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/hf_pipeline.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace moe {

namespace {

using nlohmann::json;

json read_json(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) throw Error(path.string() + ": cannot open");
    try {
        return json::parse(in);
    } catch (const json::exception& e) {
        throw Error(path.string() + ": not valid JSON: " + e.what());
    }
}

// tokenizer_config.json writes special tokens as a string or as {"content": ...}.
std::string token_content(const json& j) {
    if (j.is_string()) return j.get<std::string>();
    if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"];
    return {};
}

// A token id as the file gives it: a JSON integer in [0, limit]. (A float such as 2.9e20 would
// make get<int64_t>() undefined behaviour — found by fuzz_tokenizer.)
int64_t token_id(const json& v, int64_t limit, const std::string& origin, const std::string& what) {
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(limit)))
        throw Error(origin + ": " + what + " has an id that is not an integer from 0 to " +
                    std::to_string(limit) + ": " + v.dump());
    const int64_t id = v.get<int64_t>();
    if (id < 0 || id > limit)
        throw Error(origin + ": " + what + " has invalid id " + std::to_string(id));
    return id;
}

std::string string_or_empty(const json& obj, const char* key) {
    return obj.contains(key) && obj[key].is_string() ? obj[key].get<std::string>() : "";
}

class HfTokenizer : public Tokenizer {
  public:
    HfTokenizer(const json& j, const json* config, const std::string& origin) {
        const json& m = j.at("model");
        const std::string type = m.value("type", "BPE");
        if (type != "BPE") {
            throw Error(origin + ": model type '" + type +
                        "' is not supported; only BPE tokenizers (GPT-2/Llama-3/Qwen/DeepSeek "
                        "byte-level and SentencePiece-converted BPE) are");
        }
        if (!m.contains("vocab") || !m["vocab"].is_object())
            throw Error(origin + ": model.vocab must be an object of token -> id");

        std::vector<std::string> tokens;
        for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
            // Ids are dense in real vocabularies: a bound near the entry count keeps a bad id
            // from allocating gigabytes.
            const int64_t id = token_id(*it, int64_t(m["vocab"].size()) + (int64_t(1) << 20),
                                        origin, "token '" + it.key() + "'");
            if (size_t(id) >= tokens.size()) tokens.resize(size_t(id) + 1);
            tokens[size_t(id)] = it.key();
        }

        std::vector<std::pair<std::string, std::string>> merges;
        if (m.contains("merges") && m["merges"].is_array()) {
            merges.reserve(m["merges"].size());
            for (const auto& e : m["merges"]) {
                // Two spellings: "a b" (older files) and ["a", "b"] (tokenizers >= 0.20).
                if (e.is_string()) {
                    const std::string s = e;
                    const size_t sp = s.find(' ');
                    if (sp == std::string::npos)
                        throw Error(origin + ": merge '" + s +
                                    "' is not two tokens separated by a space");
                    merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
                } else if (e.is_array() && e.size() == 2) {
                    merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
                } else {
                    throw Error(origin + ": a merge must be \"a b\" or [\"a\", \"b\"], got " +
                                e.dump());
                }
            }
        }
        BpeOptions opt;
        opt.byte_fallback = m.value("byte_fallback", false);
        opt.ignore_merges = m.value("ignore_merges", false);
        opt.fuse_unk = m.value("fuse_unk", false);
        opt.unk_token = string_or_empty(m, "unk_token");
        opt.continuing_subword_prefix = string_or_empty(m, "continuing_subword_prefix");
        opt.end_of_word_suffix = string_or_empty(m, "end_of_word_suffix");
        model_ = std::make_unique<BpeModel>(std::move(tokens), merges, opt, origin);

        normalizer_ = make_normalizer(j.value("normalizer", json()), origin);
        pre_tokenizer_ = make_pre_tokenizer(j.value("pre_tokenizer", json()), origin);
        decoder_ = make_decoder(j.value("decoder", json()), origin);

        // Added tokens: those with normalized=false are found in the raw input, the others in
        // the normalized text, where HF looks for them in their normalized spelling.
        std::vector<AddedToken> raw, normalized;
        for (const auto& a : j.value("added_tokens", json::array())) {
            AddedToken t;
            t.id = int32_t(token_id(a.at("id"), int64_t(1) << 30, origin, "an added token"));
            t.content = a.at("content").get<std::string>();
            t.special = a.value("special", false);
            t.lstrip = a.value("lstrip", false);
            t.rstrip = a.value("rstrip", false);
            t.normalized = a.value("normalized", !t.special);
            t.single_word = a.value("single_word", false);
            added_content_[t.id] = t.content;
            added_ids_.emplace(t.content, t.id);
            if (t.special) special_set_.push_back(t.id);
            vocab_size_ = std::max(vocab_size_, t.id + 1);
            if (t.normalized && normalizer_) {
                normalizer_->normalize(t.content);
                normalized.push_back(t);
            } else {
                raw.push_back(t);
            }
        }
        std::sort(special_set_.begin(), special_set_.end());
        raw_matcher_ = AddedTokenMatcher(raw);
        normalized_matcher_ = AddedTokenMatcher(normalized);
        vocab_size_ = std::max(vocab_size_, model_->size());

        parse_post_processor(j.value("post_processor", json()), origin);
        special_.unk = opt.unk_token.empty() ? -1 : token_to_id(opt.unk_token);
        if (config) apply_config(*config);
    }

    std::string decode_bytes(const std::vector<int32_t>& ids, bool skip_special) const override {
        return decode_tokens(ids, skip_special, false);
    }

    std::string token_bytes(int32_t id) const override {
        if (is_special(id)) return {};
        return decode_tokens({id}, false, true);
    }

    int32_t vocab_size() const override { return vocab_size_; }

    std::string id_to_token(int32_t id) const override {
        const auto it = added_content_.find(id);
        return it != added_content_.end() ? it->second : model_->id_to_token(id);
    }

    int32_t token_to_id(const std::string& token) const override {
        const auto it = added_ids_.find(token);
        return it != added_ids_.end() ? it->second : model_->token_to_id(token);
    }

    bool is_special(int32_t id) const override {
        return std::binary_search(special_set_.begin(), special_set_.end(), id);
    }

  protected:
    std::vector<int32_t> encode_impl(const std::string& input, bool add_special) const override {
        // The regular expressions assume valid UTF-8 (HF's input is a Rust String).
        const std::string text = utf8::is_valid(input) ? input : utf8::sanitize(input);
        std::vector<int32_t> ids;
        if (add_special) ids = prefix_;
        for (const auto& seg : raw_matcher_.split(text)) {
            if (seg.id >= 0) {
                ids.push_back(seg.id);
                continue;
            }
            std::string s = text.substr(seg.begin, seg.end - seg.begin);
            if (normalizer_) normalizer_->normalize(s);
            for (const auto& sub : normalized_matcher_.split(s)) {
                if (sub.id >= 0) {
                    ids.push_back(sub.id);
                    continue;
                }
                std::vector<PreToken> pieces{
                    {s.substr(sub.begin, sub.end - sub.begin), seg.begin == 0 && sub.begin == 0}};
                if (pre_tokenizer_) pre_tokenizer_->split(pieces);
                for (const auto& p : pieces) model_->encode_word(p.text, ids);
            }
        }
        if (add_special) ids.insert(ids.end(), suffix_.begin(), suffix_.end());
        return ids;
    }

  private:
    std::string decode_tokens(const std::vector<int32_t>& ids, bool skip_special,
                              bool mid_sequence) const {
        std::vector<std::string> tokens;
        tokens.reserve(ids.size());
        for (int32_t id : ids) {
            if (skip_special && is_special(id)) continue;
            tokens.push_back(id_to_token(id));
        }
        std::string out;
        if (!decoder_) {
            // HF joins the raw tokens with spaces when there is no decoder.
            for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
            return out;
        }
        // A token in the middle of a text must not lose its leading space to the rules for the
        // first token (Strip, Metaspace): a placeholder that no decoder changes goes first.
        if (mid_sequence) tokens.insert(tokens.begin(), "\x01");
        decoder_->decode_chain(tokens);
        for (const auto& t : tokens) out += t;
        if (mid_sequence && !out.empty() && out[0] == '\x01') out.erase(0, 1);
        return out;
    }

    void add_template_item(const json& item, const json& specials, std::vector<int32_t>& to,
                           const std::string& origin) {
        if (!item.contains("SpecialToken")) return;
        const std::string name = item["SpecialToken"].at("id");
        if (specials.contains(name)) {
            for (const auto& id : specials[name].at("ids"))
                to.push_back(
                    int32_t(token_id(id, int64_t(1) << 30, origin, "a post-processor token")));
        } else {
            const int32_t id = token_to_id(name);
            if (id < 0)
                throw Error(origin + ": post-processor special token '" + name + "' is unknown");
            to.push_back(id);
        }
    }

    void parse_post_processor(const json& p, const std::string& origin) {
        if (p.is_null()) return;
        const std::string type = p.value("type", "");
        if (type == "Sequence") {
            for (const auto& q : p.at("processors")) parse_post_processor(q, origin);
        } else if (type == "TemplateProcessing") {
            bool after = false;
            const json specials = p.value("special_tokens", json::object());
            for (const auto& item : p.at("single")) {
                if (item.contains("Sequence")) {
                    after = true;
                    continue;
                }
                add_template_item(item, specials, after ? suffix_ : prefix_, origin);
            }
        } else if (type == "RobertaProcessing" || type == "BertProcessing") {
            prefix_.push_back(
                int32_t(token_id(p.at("cls").at(1), int64_t(1) << 30, origin, "cls")));
            suffix_.push_back(
                int32_t(token_id(p.at("sep").at(1), int64_t(1) << 30, origin, "sep")));
        } else if (type != "ByteLevel") {
            throw Error(origin + ": post-processor type '" + type +
                        "' is not supported (supported: TemplateProcessing, ByteLevel, Sequence, "
                        "RobertaProcessing, BertProcessing)");
        }
    }

    void apply_config(const json& c) {
        auto id_of = [&](const char* key) {
            if (!c.contains(key)) return -1;
            const std::string s = token_content(c[key]);
            return s.empty() ? -1 : token_to_id(s);
        };
        special_.bos = id_of("bos_token");
        special_.eos = id_of("eos_token");
        special_.pad = id_of("pad_token");
        if (const int32_t unk = id_of("unk_token"); unk >= 0) special_.unk = unk;
        // transformers' Llama tokenizers rebuild the post-processor from these flags, and
        // they are the intent of any file that sets them, so they replace what
        // tokenizer.json's post-processor adds.
        if (c.contains("add_bos_token") || c.contains("add_eos_token")) {
            prefix_.clear();
            suffix_.clear();
            if (c.value("add_bos_token", false) && special_.bos >= 0)
                prefix_.push_back(special_.bos);
            if (c.value("add_eos_token", false) && special_.eos >= 0)
                suffix_.push_back(special_.eos);
        }
    }

    std::unique_ptr<BpeModel> model_;
    std::unique_ptr<Normalizer> normalizer_;
    std::unique_ptr<PreTokenizer> pre_tokenizer_;
    std::unique_ptr<Decoder> decoder_;
    AddedTokenMatcher raw_matcher_, normalized_matcher_;
    std::unordered_map<int32_t, std::string> added_content_;
    std::unordered_map<std::string, int32_t> added_ids_;
    std::vector<int32_t> special_set_;      // sorted
    std::vector<int32_t> prefix_, suffix_;  // added around a sequence by add_special
    int32_t vocab_size_ = 0;
};

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir) {
    const auto dir = std::filesystem::path(model_dir);
    const auto path = dir / "tokenizer.json";
    if (!std::filesystem::exists(path))
        throw Error(path.string() + ": no tokenizer; pass token ids with --prompt-ids");
    const json j = read_json(path);
    const auto config_path = dir / "tokenizer_config.json";
    json config;
    const bool have_config = std::filesystem::exists(config_path);
    if (have_config) config = read_json(config_path);
    try {
        return std::make_unique<HfTokenizer>(j, have_config ? &config : nullptr, path.string());
    } catch (const json::exception& e) {
        // A field of the wrong type or a missing key deep in a component (found by fuzzing:
        // a Prepend normalizer without "prepend"): still an error naming the file.
        throw Error(path.string() + ": unexpected structure: " + e.what());
    }
}

}  // namespace moe
