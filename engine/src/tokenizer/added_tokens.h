#pragma once
// Finding added and special tokens ("<|im_start|>", "<s>") in raw text before any other
// processing, so that they become their single ids and are never split.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace moe {

struct AddedToken {
    int32_t id = -1;
    std::string content;
    bool special = false;      // skipped by decode(..., skip_special_tokens = true)
    bool lstrip = false;       // swallows the whitespace on its left
    bool rstrip = false;       // swallows the whitespace on its right
    bool normalized = false;   // matched in normalized text (HF), not in the raw input
    bool single_word = false;  // only matched when not inside a word
};

// Leftmost-longest matching over a set of token strings (HF uses Aho-Corasick with the same
// semantics); a byte trie with a first-byte filter is plenty for a few thousand tokens.
class AddedTokenMatcher {
  public:
    AddedTokenMatcher() = default;
    // `tokens` with their content as it should appear in the text being searched.
    explicit AddedTokenMatcher(const std::vector<AddedToken>& tokens);

    struct Segment {
        size_t begin, end;  // byte range in the searched text
        int32_t id;         // -1: ordinary text between tokens
    };
    // The text cut into ordinary parts and matched tokens, in order. Whitespace swallowed by
    // lstrip/rstrip belongs to no segment.
    std::vector<Segment> split(std::string_view text) const;
    bool empty() const { return tokens_.empty(); }

  private:
    struct Node {
        std::unordered_map<unsigned char, int32_t> next;
        int32_t token = -1;  // index into tokens_
    };
    std::vector<AddedToken> tokens_;
    std::vector<Node> nodes_;
    bool first_byte_[256] = {};
};

}  // namespace moe
