#pragma once
// The BPE model shared by Hugging Face tokenizer.json files and GGUF "gpt2" vocabularies:
// a word (one pre-token) is split into characters, then the lowest-ranked adjacent pair is
// merged until no listed merge applies. Characters missing from the vocabulary fall back to
// "<0xNN>" byte tokens when the vocabulary has them, else to the unknown token.
#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace moe {

// Hash that lets unordered_map<std::string, ...> be searched with a string_view.
struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenIndex = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct BpeOptions {
    bool byte_fallback = false;  // "<0xNN>" tokens for characters outside the vocabulary
    bool ignore_merges = false;  // a word that is itself in the vocabulary is one token
    bool fuse_unk = false;       // consecutive unknown characters become one unknown token
    std::string unk_token;       // empty: unknown characters are dropped (as HF does)
    std::string continuing_subword_prefix;
    std::string end_of_word_suffix;
};

class BpeModel {
  public:
    // `tokens[id]` is the vocabulary (holes are empty strings); `merges` in rank order.
    // Throws moe::Error naming `origin` when a merge's parts or result are not in the vocabulary.
    BpeModel(std::vector<std::string> tokens,
             const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
             const std::string& origin);

    // Appends the ids of one pre-token. Results of short words are cached.
    void encode_word(std::string_view word, std::vector<int32_t>& out) const;

    int32_t token_to_id(std::string_view token) const;  // -1 when absent
    const std::string& id_to_token(int32_t id) const;   // "" when out of range
    int32_t size() const { return int32_t(tokens_.size()); }
    const BpeOptions& options() const { return options_; }

  private:
    void merge_word(std::string_view word, std::vector<int32_t>& out) const;

    std::vector<std::string> tokens_;
    TokenIndex vocab_;
    // (left id << 32 | right id) -> (rank, merged id)
    std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;
    std::array<int32_t, 256> byte_ids_{};
    bool have_all_bytes_ = false;
    int32_t unk_id_ = -1;
    BpeOptions options_;

    mutable std::mutex cache_mutex_;
    mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>>
        cache_;
};

}  // namespace moe
