#include "tokenizer/tokenizer.h"

#include <array>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace moe {

namespace {

// One token per byte through "<0xNN>" vocabulary entries (SentencePiece byte fallback with
// no merges).
class ByteFallbackTokenizer : public Tokenizer {
  public:
    ByteFallbackTokenizer(const nlohmann::json& vocab, const std::string& origin) {
        byte_id_.fill(-1);
        for (auto it = vocab.begin(); it != vocab.end(); ++it) {
            const std::string& piece = it.key();
            const int32_t id = it->get<int32_t>();
            if (id < 0) throw Error(origin + ": negative id for '" + piece + "'");
            if (size_t(id) >= pieces_.size()) pieces_.resize(size_t(id) + 1);
            pieces_[size_t(id)] = piece;
            if (piece.size() == 6 && piece.rfind("<0x", 0) == 0 && piece.back() == '>') {
                byte_id_[size_t(std::stoi(piece.substr(3, 2), nullptr, 16))] = id;
            }
        }
        for (int b = 0; b < 256; ++b) {
            if (byte_id_[size_t(b)] < 0)
                throw Error(origin + ": byte-fallback vocabulary lacks <0x" + std::to_string(b) +
                            ">");
        }
    }

    std::vector<int32_t> encode(const std::string& text) const override {
        std::vector<int32_t> ids;
        ids.reserve(text.size());
        for (unsigned char c : text) ids.push_back(byte_id_[c]);
        return ids;
    }

    std::string decode(const std::vector<int32_t>& ids) const override {
        std::string out;
        for (int32_t id : ids) out += token_bytes(id);
        return out;
    }

    std::string token_bytes(int32_t id) const override {
        if (id < 0 || size_t(id) >= pieces_.size()) return {};
        const std::string& p = pieces_[size_t(id)];
        if (p.size() == 6 && p.rfind("<0x", 0) == 0 && p.back() == '>') {
            return std::string(1, char(std::stoi(p.substr(3, 2), nullptr, 16)));
        }
        return {};  // special tokens print nothing
    }

  private:
    std::vector<std::string> pieces_;
    std::array<int32_t, 256> byte_id_{};
};

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir) {
    const auto path = std::filesystem::path(model_dir) / "tokenizer.json";
    std::ifstream in(path);
    if (!in) throw Error(path.string() + ": no tokenizer; pass token ids with --prompt-ids");
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        throw Error(path.string() + ": not valid JSON: " + e.what());
    }
    const auto& m = j.value("model", nlohmann::json::object());
    const bool byte_fallback = m.value("byte_fallback", false);
    const bool no_merges = !m.contains("merges") || m["merges"].empty();
    if (m.value("type", "") == "BPE" && byte_fallback && no_merges && m.contains("vocab")) {
        return std::make_unique<ByteFallbackTokenizer>(m["vocab"], path.string());
    }
    throw Error(path.string() + ": this build reads only byte-fallback vocabularies; BPE " +
                "merges need the full tokenizer (pass token ids with --prompt-ids)");
}

std::string Utf8StreamDecoder::push(const std::string& bytes) {
    pending_ += bytes;
    size_t complete = 0, i = 0;
    while (i < pending_.size()) {
        const auto c = static_cast<unsigned char>(pending_[i]);
        const size_t len = c < 0x80         ? 1
                           : (c >> 5) == 6  ? 2
                           : (c >> 4) == 14 ? 3
                           : (c >> 3) == 30 ? 4
                                            : 1;
        if (i + len > pending_.size()) break;
        i += len;
        complete = i;
    }
    std::string out = pending_.substr(0, complete);
    pending_.erase(0, complete);
    return out;
}

std::string Utf8StreamDecoder::flush() {
    std::string out = pending_.empty() ? "" : "\xEF\xBF\xBD";
    pending_.clear();
    return out;
}

}  // namespace moe
