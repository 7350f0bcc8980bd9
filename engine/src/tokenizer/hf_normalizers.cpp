// Hugging Face normalizers.
#include "core/error.h"
#include "tokenizer/hf_pipeline.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace moe {

namespace {

class SequenceNormalizer : public Normalizer {
  public:
    explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts)
        : parts_(std::move(parts)) {}
    void normalize(std::string& text) const override {
        for (const auto& p : parts_) p->normalize(text);
    }

  private:
    std::vector<std::unique_ptr<Normalizer>> parts_;
};

// Unicode normalization forms. This build has no Unicode composition tables (the engine links
// no ICU), so text passes unchanged: exact for input that is already in the form, which is
// what editors and chat clients produce for NFC. Decomposed input may tokenize differently
// from HF.
class IdentityNormalizer : public Normalizer {
  public:
    void normalize(std::string&) const override {}
};

class PrependNormalizer : public Normalizer {
  public:
    explicit PrependNormalizer(std::string s) : prefix_(std::move(s)) {}
    void normalize(std::string& text) const override {
        if (!text.empty()) text.insert(0, prefix_);  // HF leaves empty input empty
    }

  private:
    std::string prefix_;
};

class ReplaceNormalizer : public Normalizer {
  public:
    ReplaceNormalizer(const nlohmann::json& pattern, std::string content, const std::string& origin)
        : content_(std::move(content)) {
        if (pattern.contains("String")) {
            literal_ = pattern["String"].get<std::string>();
        } else if (pattern.contains("Regex")) {
            regex_ = std::make_unique<Regex>(pattern["Regex"].get<std::string>(), origin);
        } else {
            throw Error(origin + ": Replace pattern needs \"String\" or \"Regex\"");
        }
    }
    void normalize(std::string& text) const override {
        std::string out;
        size_t prev = 0;
        if (regex_) {
            for (const auto& [b, e] : regex_->find_all(text)) {
                out.append(text, prev, b - prev);
                out += content_;
                prev = e;
            }
        } else {
            if (literal_.empty()) return;
            for (size_t pos; (pos = text.find(literal_, prev)) != std::string::npos;) {
                out.append(text, prev, pos - prev);
                out += content_;
                prev = pos + literal_.size();
            }
        }
        out.append(text, prev);
        text = std::move(out);
    }

  private:
    std::string literal_, content_;
    std::unique_ptr<Regex> regex_;
};

class StripNormalizer : public Normalizer {
  public:
    StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
    void normalize(std::string& text) const override {
        size_t begin = 0, end = text.size();
        if (left_) {
            while (begin < end) {
                size_t p = begin;
                if (!utf8::is_whitespace(utf8::next(text, p))) break;
                begin = p;
            }
        }
        if (right_) {
            while (end > begin) {
                size_t start = end - 1;
                while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80)
                    --start;
                size_t p = start;
                if (!utf8::is_whitespace(utf8::next(text, p))) break;
                end = start;
            }
        }
        text = text.substr(begin, end - begin);
    }

  private:
    bool left_, right_;
};

// Lower-cases the cased alphabets that have a fixed offset (ASCII, Latin-1, Greek, Cyrillic);
// other scripts pass unchanged.
class LowercaseNormalizer : public Normalizer {
  public:
    void normalize(std::string& text) const override {
        std::string out;
        out.reserve(text.size());
        for (size_t pos = 0; pos < text.size();) {
            uint32_t cp = utf8::next(text, pos);
            if ((cp >= 'A' && cp <= 'Z') || (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) ||
                (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2) || (cp >= 0x410 && cp <= 0x42F))
                cp += 32;
            else if (cp >= 0x400 && cp <= 0x40F)
                cp += 80;
            utf8::append(out, cp);
        }
        text = std::move(out);
    }
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j, const std::string& origin) {
    if (j.is_null()) return nullptr;
    const std::string type = j.value("type", "");
    if (type == "Sequence") {
        std::vector<std::unique_ptr<Normalizer>> parts;
        for (const auto& n : j.at("normalizers")) {
            if (auto p = make_normalizer(n, origin)) parts.push_back(std::move(p));
        }
        return std::make_unique<SequenceNormalizer>(std::move(parts));
    }
    if (type == "NFC" || type == "NFKC" || type == "NFD" || type == "NFKD")
        return std::make_unique<IdentityNormalizer>();
    if (type == "Prepend") return std::make_unique<PrependNormalizer>(j.at("prepend"));
    if (type == "Replace")
        return std::make_unique<ReplaceNormalizer>(j.at("pattern"), j.at("content"), origin);
    if (type == "Strip")
        return std::make_unique<StripNormalizer>(j.value("strip_left", true),
                                                 j.value("strip_right", true));
    if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
    throw Error(origin + ": normalizer type '" + type +
                "' is not supported (supported: Sequence, NFC, NFKC, NFD, NFKD, Prepend, "
                "Replace, Strip, Lowercase)");
}

}  // namespace moe
