#include "tokenizer/added_tokens.h"

#include <cctype>

#include "tokenizer/unicode.h"

namespace moe {

namespace {

bool is_word_char(uint32_t cp) {
    if (cp < 0x80) return std::isalnum(int(cp)) || cp == '_';
    return !utf8::is_whitespace(cp);
}

// The code point that ends just before byte offset `pos`.
uint32_t char_before(std::string_view s, size_t pos) {
    size_t start = pos - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    return utf8::next(s, start);
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens) {
    nodes_.emplace_back();
    for (const auto& t : tokens) {
        if (t.content.empty()) continue;
        int32_t node = 0;
        for (unsigned char c : t.content) {
            const auto it = nodes_[size_t(node)].next.find(c);
            if (it != nodes_[size_t(node)].next.end()) {
                node = it->second;
            } else {
                const auto fresh = int32_t(nodes_.size());
                nodes_[size_t(node)].next.emplace(c, fresh);
                nodes_.emplace_back();
                node = fresh;
            }
        }
        // Two entries with the same content: the first one listed wins.
        if (nodes_[size_t(node)].token < 0) {
            nodes_[size_t(node)].token = int32_t(tokens_.size());
            tokens_.push_back(t);
            first_byte_[static_cast<unsigned char>(t.content[0])] = true;
        }
    }
}

std::vector<AddedTokenMatcher::Segment> AddedTokenMatcher::split(std::string_view text) const {
    std::vector<Segment> out;
    size_t text_start = 0;  // start of the pending ordinary text
    size_t pos = 0;
    while (pos < text.size()) {
        if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
            ++pos;
            continue;
        }
        // Longest token starting here.
        int32_t best = -1;
        size_t best_end = 0;
        int32_t node = 0;
        for (size_t i = pos; i < text.size(); ++i) {
            const auto& next = nodes_[size_t(node)].next;
            const auto it = next.find(static_cast<unsigned char>(text[i]));
            if (it == next.end()) break;
            node = it->second;
            if (nodes_[size_t(node)].token >= 0) {
                best = nodes_[size_t(node)].token;
                best_end = i + 1;
            }
        }
        if (best < 0) {
            ++pos;
            continue;
        }
        const AddedToken& tok = tokens_[size_t(best)];
        if (tok.single_word) {
            const bool word_before = pos > 0 && is_word_char(char_before(text, pos));
            size_t after = best_end;
            const bool word_after = after < text.size() && is_word_char(utf8::next(text, after));
            if (word_before || word_after) {
                ++pos;
                continue;
            }
        }
        size_t begin = pos, end = best_end;
        if (tok.lstrip) {
            while (begin > text_start && utf8::is_whitespace(char_before(text, begin))) {
                --begin;
                while (begin > text_start &&
                       (static_cast<unsigned char>(text[begin]) & 0xC0) == 0x80)
                    --begin;
            }
        }
        if (tok.rstrip) {
            while (end < text.size()) {
                size_t p = end;
                if (!utf8::is_whitespace(utf8::next(text, p))) break;
                end = p;
            }
        }
        if (begin > text_start) out.push_back({text_start, begin, -1});
        out.push_back({pos, best_end, tok.id});
        pos = text_start = end;
    }
    if (text_start < text.size()) out.push_back({text_start, text.size(), -1});
    return out;
}

}  // namespace moe
