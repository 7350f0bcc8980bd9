#include "tokenizer/gguf_vocab.h"

#include <array>
#include <cstdio>
#include <queue>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/hf_pipeline.h"
#include "tokenizer/unicode.h"

namespace moe {

namespace {

const std::string kSpace = "\xE2\x96\x81";  // "▁", SentencePiece's visible space

// Pre-tokenizer regexes llama.cpp uses for a tokenizer.ggml.pre value (applied in order, each
// splitting the pieces of the previous one and keeping matches and gaps). They are the
// patterns of the models' tokenizer.json files.
std::vector<std::string> bpe_regexes(const std::string& pre) {
    const std::string llama3 =
        R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    const std::string qwen2 =
        R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    const std::string gpt2 =
        R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
    if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "falcon3" ||
        pre == "pixtral" || pre == "dbrx" || pre == "smaug-bpe" || pre == "glm4" ||
        pre == "chatglm-bpe")
        return {llama3};
    if (pre == "qwen2" || pre == "deepseek-r1-qwen" || pre == "stablelm2" || pre == "hunyuan" ||
        pre == "grok-2")
        return {qwen2};
    if (pre == "deepseek-v3" || pre == "hunyuan-dense")
        return {
            R"(\p{N}{1,3})", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
            R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"};
    if (pre == "deepseek-coder")
        return {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)",
                "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+", R"(\p{N})"};
    if (pre == "gpt-2" || pre == "gpt2" || pre == "phi-2" || pre == "mpt" || pre == "olmo" ||
        pre == "jais" || pre == "roberta-bpe" || pre == "exaone4")
        return {gpt2};
    if (pre == "starcoder" || pre == "refact" || pre == "command-r" || pre == "smollm" ||
        pre == "codeshell" || pre == "exaone")
        return {R"(\p{N})", gpt2};
    if (pre == "falcon") return {R"([\p{P}\$\+<=>\^~\|`]+)", gpt2, "[0-9][0-9][0-9]"};
    if (pre.empty() || pre == "default")
        return {R"([\p{P}\$\+<=>\^~\|]+)", gpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"};
    throw Error("GGUF tokenizer.ggml.pre '" + pre +
                "' is not supported (supported: llama-bpe/llama3, qwen2, deepseek-v3, "
                "deepseek-coder, gpt-2, starcoder, falcon, default and their aliases)");
}

class GgufTokenizer : public Tokenizer {
  public:
    explicit GgufTokenizer(const GgufVocab& v) : tokens_(v.tokens) {
        const std::string origin = "GGUF tokenizer (model '" + v.model + "')";
        const size_t n = tokens_.size();
        if (n == 0) throw Error(origin + ": tokenizer.ggml.tokens is empty");
        if (!v.token_type.empty() && v.token_type.size() != n)
            throw Error(origin + ": tokenizer.ggml.token_type has " +
                        std::to_string(v.token_type.size()) + " entries for " + std::to_string(n) +
                        " tokens");
        if (!v.scores.empty() && v.scores.size() != n)
            throw Error(origin + ": tokenizer.ggml.scores has " + std::to_string(v.scores.size()) +
                        " entries for " + std::to_string(n) + " tokens");
        types_.assign(n, int32_t(GgufTokenType::Normal));
        if (!v.token_type.empty()) types_ = v.token_type;
        scores_.assign(n, 0.0f);
        if (!v.scores.empty()) scores_ = v.scores;

        if (v.model == "llama") {
            spm_ = true;
            special_.bos = v.bos_id.value_or(1);
            special_.eos = v.eos_id.value_or(2);
            special_.unk = v.unk_id.value_or(0);
            add_bos_ = v.add_bos.value_or(true);
            add_space_prefix_ = v.add_space_prefix.value_or(true);
        } else if (v.model == "gpt2") {
            spm_ = false;
            special_.bos = v.bos_id.value_or(-1);
            special_.eos = v.eos_id.value_or(-1);
            special_.unk = v.unk_id.value_or(-1);
            const bool llama3 = v.pre == "llama3" || v.pre == "llama-v3" || v.pre == "llama-bpe" ||
                                v.pre == "falcon3" || v.pre == "pixtral";
            add_bos_ = v.add_bos.value_or(llama3);
            add_space_prefix_ = v.add_space_prefix.value_or(false);
        } else {
            throw Error(origin +
                        ": tokenizer.ggml.model must be \"llama\" (SentencePiece) or "
                        "\"gpt2\" (BPE)");
        }
        special_.pad = v.pad_id.value_or(-1);
        special_.eot = v.eot_id.value_or(-1);
        add_eos_ = v.add_eos.value_or(false);
        for (int32_t* id :
             {&special_.bos, &special_.eos, &special_.unk, &special_.pad, &special_.eot}) {
            if (*id >= int32_t(n)) *id = -1;  // llama.cpp ignores out-of-range ids too
        }

        text_to_id_.reserve(n);
        std::vector<AddedToken> specials;
        for (size_t id = 0; id < n; ++id) {
            text_to_id_.emplace(tokens_[id], int32_t(id));
            const auto t = GgufTokenType(types_[id]);
            if (t == GgufTokenType::Control || t == GgufTokenType::UserDefined ||
                t == GgufTokenType::Unknown) {
                specials.push_back({int32_t(id), tokens_[id], t != GgufTokenType::UserDefined});
            }
        }
        matcher_ = AddedTokenMatcher(specials);
        byte_ids_.fill(-1);
        for (int b = 0; b < 256; ++b) {
            char piece[8];
            std::snprintf(piece, sizeof piece, "<0x%02X>", b);
            const auto it = text_to_id_.find(std::string_view(piece));
            if (it != text_to_id_.end()) byte_ids_[size_t(b)] = it->second;
        }

        if (!spm_) {
            std::vector<std::pair<std::string, std::string>> merges;
            merges.reserve(v.merges.size());
            for (const auto& m : v.merges) {
                const size_t sp = m.find(' ', 1);
                if (sp == std::string::npos)
                    throw Error(origin + ": merge '" + m +
                                "' is not two tokens separated by a space");
                merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
            }
            BpeOptions opt;
            opt.ignore_merges = v.pre == "llama3" || v.pre == "llama-v3" || v.pre == "llama-bpe" ||
                                v.pre == "falcon3" || v.pre == "pixtral";
            bpe_ = std::make_unique<BpeModel>(tokens_, merges, opt, origin);
            nlohmann::json seq = {{"type", "Sequence"}, {"pretokenizers", nlohmann::json::array()}};
            for (const auto& r : bpe_regexes(v.pre)) {
                seq["pretokenizers"].push_back(
                    {{"type", "Split"}, {"pattern", {{"Regex", r}}}, {"behavior", "Isolated"}});
            }
            seq["pretokenizers"].push_back(
                {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}});
            pre_ = make_pre_tokenizer(seq, origin);
        }
    }

    std::string decode_bytes(const std::vector<int32_t>& ids, bool skip_special) const override {
        // llama_detokenize: the leading space SentencePiece adds is removed from the first
        // piece, except after a BOS (which also stops the removal when it is skipped).
        size_t begin = 0, end = ids.size();
        bool remove_space = add_space_prefix_;
        if (skip_special && add_bos_ && end > 0 && ids[0] == special_.bos) {
            remove_space = false;
            ++begin;
        }
        if (skip_special && add_eos_ && end > begin && ids[end - 1] == special_.eos) --end;
        std::string out;
        for (size_t i = begin; i < end; ++i) {
            std::string piece = piece_of(ids[i], !skip_special);
            if (remove_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
            remove_space = false;
            out += piece;
        }
        return out;
    }

    std::string token_bytes(int32_t id) const override { return piece_of(id, false); }
    int32_t vocab_size() const override { return int32_t(tokens_.size()); }
    std::string id_to_token(int32_t id) const override {
        return valid(id) ? tokens_[size_t(id)] : std::string();
    }
    int32_t token_to_id(const std::string& token) const override {
        const auto it = text_to_id_.find(token);
        return it == text_to_id_.end() ? -1 : it->second;
    }
    bool is_special(int32_t id) const override {
        if (!valid(id)) return false;
        const auto t = GgufTokenType(types_[size_t(id)]);
        return t == GgufTokenType::Control || t == GgufTokenType::Unknown;
    }

  protected:
    std::vector<int32_t> encode_impl(const std::string& input, bool add_special) const override {
        const std::string text = utf8::is_valid(input) ? input : utf8::sanitize(input);
        std::vector<int32_t> out;
        if (add_special && add_bos_) {
            if (special_.bos < 0)
                throw Error(
                    "GGUF tokenizer: tokenizer.ggml.add_bos_token is set (or implied by the "
                    "model) but there is no valid tokenizer.ggml.bos_token_id");
            out.push_back(special_.bos);
        }
        bool prev_special = true;  // SentencePiece prefixes a space at the start and after specials
        for (const auto& seg : matcher_.split(text)) {
            if (seg.id >= 0) {
                out.push_back(seg.id);
                prev_special = true;
                continue;
            }
            std::string s = text.substr(seg.begin, seg.end - seg.begin);
            if (spm_) {
                if (add_space_prefix_ && prev_special) s.insert(0, " ");
                encode_spm(s, out);
            } else {
                std::vector<PreToken> pieces{{std::move(s), seg.begin == 0}};
                pre_->split(pieces);
                for (const auto& p : pieces) bpe_->encode_word(p.text, out);
            }
            prev_special = false;
        }
        if (add_special && add_eos_ && special_.eos >= 0) out.push_back(special_.eos);
        return out;
    }

  private:
    bool valid(int32_t id) const { return id >= 0 && size_t(id) < tokens_.size(); }

    // llama_token_to_piece.
    std::string piece_of(int32_t id, bool special) const {
        if (!valid(id)) return {};
        const std::string& text = tokens_[size_t(id)];
        switch (GgufTokenType(types_[size_t(id)])) {
            case GgufTokenType::Control:
            case GgufTokenType::Unknown:
                return special ? text : std::string();
            case GgufTokenType::UserDefined:
                return text;
            case GgufTokenType::Byte:
                if (text.size() == 6 && text.compare(0, 3, "<0x") == 0)
                    return std::string(1, char(std::strtol(text.c_str() + 3, nullptr, 16)));
                return {};
            case GgufTokenType::Normal:
            case GgufTokenType::Undefined: {
                if (!spm_) {
                    std::string bytes;
                    for (size_t pos = 0; pos < text.size();) {
                        const uint32_t cp = utf8::next(text, pos);
                        const int b = utf8::char_to_byte(cp);
                        if (b >= 0)
                            bytes += char(b);
                        else
                            utf8::append(bytes, cp);
                    }
                    return bytes;
                }
                std::string out;
                for (size_t pos = 0; pos < text.size();) {
                    if (text.compare(pos, kSpace.size(), kSpace) == 0) {
                        out += ' ';
                        pos += kSpace.size();
                    } else {
                        out += text[pos++];
                    }
                }
                return out;
            }
            default:
                return {};
        }
    }

    // llama.cpp's SentencePiece tokenizer: spaces become "▁", characters start as symbols, and
    // the adjacent pair whose concatenation is the highest-scoring vocabulary entry is merged
    // until none is left. Only vocabulary entries are ever formed by a merge, so a piece that
    // is not a token is a single character outside the vocabulary: it becomes byte tokens.
    void encode_spm(const std::string& raw, std::vector<int32_t>& out) const {
        std::string text;
        text.reserve(raw.size() + raw.size() / 2);
        for (char c : raw) {
            if (c == ' ')
                text += kSpace;
            else
                text += c;
        }
        struct Symbol {
            size_t begin, len;
            int32_t prev, next;
        };
        std::vector<Symbol> sym;
        for (size_t pos = 0; pos < text.size();) {
            const size_t len = std::min(
                utf8::sequence_length(static_cast<unsigned char>(text[pos])), text.size() - pos);
            const auto i = int32_t(sym.size());
            sym.push_back({pos, len, i - 1, pos + len == text.size() ? -1 : i + 1});
            pos += len;
        }
        struct Bigram {
            int32_t left, right;
            float score;
            size_t size;
            // Highest score first; on a tie the leftmost pair.
            bool operator<(const Bigram& o) const {
                return score < o.score || (score == o.score && left > o.left);
            }
        };
        std::priority_queue<Bigram> queue;
        auto try_add = [&](int32_t l, int32_t r) {
            if (l < 0 || r < 0) return;
            const std::string_view s(text.data() + sym[size_t(l)].begin,
                                     sym[size_t(l)].len + sym[size_t(r)].len);
            const auto it = text_to_id_.find(s);
            if (it == text_to_id_.end()) return;
            queue.push({l, r, scores_[size_t(it->second)], s.size()});
        };
        for (int32_t i = 1; i < int32_t(sym.size()); ++i) try_add(i - 1, i);
        while (!queue.empty()) {
            const Bigram b = queue.top();
            queue.pop();
            Symbol& l = sym[size_t(b.left)];
            Symbol& r = sym[size_t(b.right)];
            if (l.len == 0 || r.len == 0 || l.len + r.len != b.size) continue;
            l.len += r.len;
            r.len = 0;
            l.next = r.next;
            if (r.next >= 0) sym[size_t(r.next)].prev = b.left;
            try_add(l.prev, b.left);
            try_add(b.left, l.next);
        }
        for (int32_t i = sym.empty() ? -1 : 0; i >= 0; i = sym[size_t(i)].next) {
            const std::string_view piece(text.data() + sym[size_t(i)].begin, sym[size_t(i)].len);
            const auto tok = text_to_id_.find(piece);
            if (tok != text_to_id_.end()) {
                out.push_back(tok->second);
            } else {
                for (unsigned char c : piece) out.push_back(byte_token(c));
            }
        }
    }

    int32_t byte_token(unsigned char c) const {
        if (byte_ids_[c] >= 0) return byte_ids_[c];
        // Vocabularies without byte tokens: the character itself, else unknown (llama.cpp).
        const auto it = text_to_id_.find(std::string_view(reinterpret_cast<const char*>(&c), 1));
        return it != text_to_id_.end() ? it->second : special_.unk;
    }

    std::vector<std::string> tokens_;
    std::vector<int32_t> types_;
    std::vector<float> scores_;
    TokenIndex text_to_id_;
    AddedTokenMatcher matcher_;
    std::array<int32_t, 256> byte_ids_{};
    bool spm_ = true;
    bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
    std::unique_ptr<BpeModel> bpe_;
    std::unique_ptr<PreTokenizer> pre_;
};

}  // namespace

std::unique_ptr<Tokenizer> tokenizer_from_gguf(const GgufVocab& vocab) {
    return std::make_unique<GgufTokenizer>(vocab);
}

}  // namespace moe
