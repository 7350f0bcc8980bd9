// Hugging Face pre-tokenizers: they cut normalized text into the words BPE sees.
#include <algorithm>

#include "core/error.h"
#include "tokenizer/hf_pipeline.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace moe {

namespace {

// GPT-2's pattern, used by ByteLevel when use_regex is true.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior parse_behavior(const std::string& s, const std::string& origin) {
    if (s == "Removed") return Behavior::Removed;
    if (s == "Isolated") return Behavior::Isolated;
    if (s == "MergedWithPrevious") return Behavior::MergedWithPrevious;
    if (s == "MergedWithNext") return Behavior::MergedWithNext;
    if (s == "Contiguous") return Behavior::Contiguous;
    throw Error(origin + ": unknown split behavior '" + s + "'");
}

// Cuts every piece at the matches of `regex` and recombines matches and gaps as `behavior`
// says (HF's NormalizedString::split).
void split_pieces(std::vector<PreToken>& pieces, const Regex& regex, Behavior behavior,
                  bool invert) {
    std::vector<PreToken> out;
    out.reserve(pieces.size());
    for (auto& piece : pieces) {
        const std::string& t = piece.text;
        struct Part {
            size_t b, e;
            bool match;
        };
        std::vector<Part> parts;
        size_t prev = 0;
        for (const auto& [b, e] : regex.find_all(t)) {
            if (b > prev) parts.push_back({prev, b, invert});
            parts.push_back({b, e, !invert});
            prev = e;
        }
        if (prev < t.size()) parts.push_back({prev, t.size(), invert});

        // The recombination rules of HF's SplitDelimiterBehavior: a delimiter merges into its
        // neighbour only when that neighbour is not itself a delimiter.
        std::vector<std::pair<size_t, size_t>> ranges;
        bool previous_match = false;
        if (behavior == Behavior::MergedWithNext) {
            for (size_t i = parts.size(); i-- > 0;) {
                const Part& p = parts[i];
                if (p.match && !previous_match && !ranges.empty())
                    ranges.back().first = p.b;
                else
                    ranges.emplace_back(p.b, p.e);
                previous_match = p.match;
            }
            std::reverse(ranges.begin(), ranges.end());
        } else {
            for (const Part& p : parts) {
                switch (behavior) {
                    case Behavior::Removed:
                        if (!p.match) ranges.emplace_back(p.b, p.e);
                        break;
                    case Behavior::MergedWithPrevious:
                        if (p.match && !previous_match && !ranges.empty())
                            ranges.back().second = p.e;
                        else
                            ranges.emplace_back(p.b, p.e);
                        break;
                    case Behavior::Contiguous:
                        if (p.match == previous_match && !ranges.empty())
                            ranges.back().second = p.e;
                        else
                            ranges.emplace_back(p.b, p.e);
                        break;
                    default:
                        ranges.emplace_back(p.b, p.e);
                }
                previous_match = p.match;
            }
        }
        for (const auto& [b, e] : ranges) {
            if (e > b) out.push_back({t.substr(b, e - b), piece.at_start && b == 0});
        }
    }
    pieces = std::move(out);
}

class SplitPreTokenizer : public PreTokenizer {
  public:
    SplitPreTokenizer(const std::string& pattern, Behavior behavior, bool invert,
                      const std::string& origin)
        : regex_(pattern, origin), behavior_(behavior), invert_(invert) {}
    void split(std::vector<PreToken>& pieces) const override {
        split_pieces(pieces, regex_, behavior_, invert_);
    }

  private:
    Regex regex_;
    Behavior behavior_;
    bool invert_;
};

class ByteLevelPreTokenizer : public PreTokenizer {
  public:
    ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex, const std::string& origin)
        : add_prefix_space_(add_prefix_space) {
        if (use_regex) regex_ = std::make_unique<Regex>(kGpt2Pattern, origin);
    }
    void split(std::vector<PreToken>& pieces) const override {
        if (add_prefix_space_) {
            for (auto& p : pieces)
                if (p.text.empty() || p.text[0] != ' ') p.text.insert(0, " ");
        }
        if (regex_) split_pieces(pieces, *regex_, Behavior::Isolated, false);
        for (auto& p : pieces) p.text = utf8::byte_level_encode(p.text);
    }

  private:
    bool add_prefix_space_;
    std::unique_ptr<Regex> regex_;
};

class MetaspacePreTokenizer : public PreTokenizer {
  public:
    enum class Prepend { Always, First, Never };
    MetaspacePreTokenizer(std::string replacement, Prepend prepend, bool split,
                          const std::string& origin)
        : replacement_(std::move(replacement)),
          prepend_(prepend),
          split_(split),
          regex_(Regex::escape(replacement_), origin) {}
    void split(std::vector<PreToken>& pieces) const override {
        for (auto& p : pieces) {
            std::string t;
            for (char c : p.text) {
                if (c == ' ')
                    t += replacement_;
                else
                    t += c;
            }
            const bool starts = t.compare(0, replacement_.size(), replacement_) == 0;
            if (!starts &&
                (prepend_ == Prepend::Always || (prepend_ == Prepend::First && p.at_start)))
                t.insert(0, replacement_);
            p.text = std::move(t);
        }
        if (split_) split_pieces(pieces, regex_, Behavior::MergedWithNext, false);
    }

  private:
    std::string replacement_;
    Prepend prepend_;
    bool split_;
    Regex regex_;
};

class SequencePreTokenizer : public PreTokenizer {
  public:
    explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts)
        : parts_(std::move(parts)) {}
    void split(std::vector<PreToken>& pieces) const override {
        for (const auto& p : parts_) p->split(pieces);
    }

  private:
    std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

std::string split_pattern(const nlohmann::json& pattern, const std::string& origin) {
    if (pattern.contains("Regex")) return pattern["Regex"].get<std::string>();
    if (pattern.contains("String")) return Regex::escape(pattern["String"].get<std::string>());
    throw Error(origin + ": Split pattern needs \"String\" or \"Regex\"");
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j,
                                                 const std::string& origin) {
    if (j.is_null()) return nullptr;
    const std::string type = j.value("type", "");
    if (type == "Sequence") {
        std::vector<std::unique_ptr<PreTokenizer>> parts;
        for (const auto& p : j.at("pretokenizers")) {
            if (auto made = make_pre_tokenizer(p, origin)) parts.push_back(std::move(made));
        }
        return std::make_unique<SequencePreTokenizer>(std::move(parts));
    }
    if (type == "Split") {
        return std::make_unique<SplitPreTokenizer>(
            split_pattern(j.at("pattern"), origin),
            parse_behavior(j.value("behavior", "Isolated"), origin), j.value("invert", false),
            origin);
    }
    if (type == "ByteLevel") {
        return std::make_unique<ByteLevelPreTokenizer>(j.value("add_prefix_space", true),
                                                       j.value("use_regex", true), origin);
    }
    if (type == "Metaspace") {
        using P = MetaspacePreTokenizer::Prepend;
        P prepend = j.value("add_prefix_space", true) ? P::Always : P::Never;
        if (j.contains("prepend_scheme")) {
            const std::string s = j["prepend_scheme"];
            prepend = s == "first" ? P::First : s == "never" ? P::Never : P::Always;
        }
        return std::make_unique<MetaspacePreTokenizer>(j.value("replacement", "\u2581"), prepend,
                                                       j.value("split", true), origin);
    }
    if (type == "Digits") {
        return std::make_unique<SplitPreTokenizer>(
            j.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)", Behavior::Isolated,
            false, origin);
    }
    if (type == "Whitespace") {
        // HF keeps the matches of \w+|[^\w\s]+ (inverted Removed split).
        return std::make_unique<SplitPreTokenizer>(R"(\w+|[^\w\s]+)", Behavior::Removed, true,
                                                   origin);
    }
    if (type == "WhitespaceSplit") {
        return std::make_unique<SplitPreTokenizer>(R"(\s+)", Behavior::Removed, false, origin);
    }
    if (type == "Punctuation") {
        return std::make_unique<SplitPreTokenizer>(
            R"([\p{P}!-/:-@\[-`{-~])", parse_behavior(j.value("behavior", "Isolated"), origin),
            false, origin);
    }
    if (type == "BertPreTokenizer") {
        std::vector<std::unique_ptr<PreTokenizer>> parts;
        parts.push_back(
            std::make_unique<SplitPreTokenizer>(R"(\s+)", Behavior::Removed, false, origin));
        parts.push_back(std::make_unique<SplitPreTokenizer>(R"([\p{P}!-/:-@\[-`{-~])",
                                                            Behavior::Isolated, false, origin));
        return std::make_unique<SequencePreTokenizer>(std::move(parts));
    }
    throw Error(origin + ": pre-tokenizer type '" + type +
                "' is not supported (supported: Sequence, Split, ByteLevel, Metaspace, Digits, "
                "Whitespace, WhitespaceSplit, Punctuation, BertPreTokenizer)");
}

}  // namespace moe
