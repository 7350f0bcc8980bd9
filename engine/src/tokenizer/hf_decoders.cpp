// Hugging Face decoders: token strings back to text.
#include "core/error.h"
#include "tokenizer/hf_pipeline.h"
#include "tokenizer/unicode.h"

namespace moe {

namespace {

void replace_all(std::string& s, const std::string& from, const std::string& to) {
    if (from.empty()) return;
    for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
        s.replace(pos, from.size(), to);
}

// Byte-level characters back to bytes; a token with any character outside the alphabet (an
// added token such as "<｜begin▁of▁sentence｜>") is kept as written, as HF does.
class ByteLevelDecoder : public Decoder {
  public:
    void decode_chain(std::vector<std::string>& tokens) const override {
        for (auto& t : tokens) {
            std::string bytes;
            bool ok = true;
            for (size_t pos = 0; pos < t.size() && ok;) {
                const int b = utf8::char_to_byte(utf8::next(t, pos));
                if (b < 0) ok = false;
                bytes += char(b);
            }
            if (ok) t = std::move(bytes);
        }
    }
};

// "<0xNN>" tokens to their bytes. HF would turn an invalid run into U+FFFD right here; the
// bytes stay raw so that streaming can wait for the rest of a character, and the final text is
// made valid once at the end.
class ByteFallbackDecoder : public Decoder {
  public:
    void decode_chain(std::vector<std::string>& tokens) const override {
        for (auto& t : tokens) {
            if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
                char* end = nullptr;
                const long v = std::strtol(t.c_str() + 3, &end, 16);
                if (end == t.c_str() + 5) t = std::string(1, char(v));
            }
        }
    }
};

class FuseDecoder : public Decoder {
  public:
    void decode_chain(std::vector<std::string>& tokens) const override {
        std::string all;
        for (const auto& t : tokens) all += t;
        tokens.assign(1, std::move(all));
    }
};

class StripDecoder : public Decoder {
  public:
    StripDecoder(std::string content, int start, int stop)
        : content_(std::move(content)), start_(start), stop_(stop) {}
    void decode_chain(std::vector<std::string>& tokens) const override {
        for (auto& t : tokens) {
            for (int i = 0; i < start_ && t.compare(0, content_.size(), content_) == 0; ++i)
                t.erase(0, content_.size());
            for (int i = 0; i < stop_ && t.size() >= content_.size() &&
                            t.compare(t.size() - content_.size(), content_.size(), content_) == 0;
                 ++i)
                t.erase(t.size() - content_.size());
        }
    }

  private:
    std::string content_;
    int start_, stop_;
};

class ReplaceDecoder : public Decoder {
  public:
    ReplaceDecoder(std::string from, std::string to) : from_(std::move(from)), to_(std::move(to)) {}
    void decode_chain(std::vector<std::string>& tokens) const override {
        for (auto& t : tokens) replace_all(t, from_, to_);
    }

  private:
    std::string from_, to_;
};

class MetaspaceDecoder : public Decoder {
  public:
    MetaspaceDecoder(std::string replacement, bool strip_first)
        : replacement_(std::move(replacement)), strip_first_(strip_first) {}
    void decode_chain(std::vector<std::string>& tokens) const override {
        for (size_t i = 0; i < tokens.size(); ++i) {
            replace_all(tokens[i], replacement_, " ");
            if (i == 0 && strip_first_ && !tokens[i].empty() && tokens[i][0] == ' ')
                tokens[i].erase(0, 1);
        }
    }

  private:
    std::string replacement_;
    bool strip_first_;
};

class SequenceDecoder : public Decoder {
  public:
    explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts)
        : parts_(std::move(parts)) {}
    void decode_chain(std::vector<std::string>& tokens) const override {
        for (const auto& p : parts_) p->decode_chain(tokens);
    }

  private:
    std::vector<std::unique_ptr<Decoder>> parts_;
};

}  // namespace

std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j, const std::string& origin) {
    if (j.is_null()) return nullptr;
    const std::string type = j.value("type", "");
    if (type == "Sequence") {
        std::vector<std::unique_ptr<Decoder>> parts;
        for (const auto& d : j.at("decoders")) {
            if (auto made = make_decoder(d, origin)) parts.push_back(std::move(made));
        }
        return std::make_unique<SequenceDecoder>(std::move(parts));
    }
    if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
    if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
    if (type == "Fuse") return std::make_unique<FuseDecoder>();
    if (type == "Strip") {
        return std::make_unique<StripDecoder>(j.value("content", " "), j.value("start", 0),
                                              j.value("stop", 0));
    }
    if (type == "Replace") {
        const auto& pattern = j.at("pattern");
        if (!pattern.contains("String"))
            throw Error(origin + ": Replace decoder supports only a \"String\" pattern");
        return std::make_unique<ReplaceDecoder>(pattern["String"], j.at("content"));
    }
    if (type == "Metaspace") {
        bool strip = j.value("add_prefix_space", true);
        if (j.contains("prepend_scheme")) strip = j["prepend_scheme"] != "never";
        return std::make_unique<MetaspaceDecoder>(j.value("replacement", "\u2581"), strip);
    }
    throw Error(origin + ": decoder type '" + type +
                "' is not supported (supported: Sequence, ByteLevel, ByteFallback, Fuse, Strip, "
                "Replace, Metaspace)");
}

}  // namespace moe
