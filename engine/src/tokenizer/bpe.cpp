#include "tokenizer/bpe.h"

#include <cstdio>
#include <queue>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace moe {

namespace {

// Words longer than this are not cached: they are rare, and caching them would let one long
// input (a SentencePiece text without pre-tokenizer is one word) pin megabytes.
constexpr size_t kMaxCachedWord = 256;
constexpr size_t kMaxCacheEntries = 1 << 18;

uint64_t pair_key(int32_t a, int32_t b) {
    return (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
}

}  // namespace

BpeModel::BpeModel(std::vector<std::string> tokens,
                   const std::vector<std::pair<std::string, std::string>>& merges,
                   BpeOptions options, const std::string& origin)
    : tokens_(std::move(tokens)), options_(std::move(options)) {
    vocab_.reserve(tokens_.size());
    for (size_t id = 0; id < tokens_.size(); ++id) {
        if (!tokens_[id].empty()) vocab_.emplace(tokens_[id], int32_t(id));
    }
    byte_ids_.fill(-1);
    have_all_bytes_ = true;
    for (int b = 0; b < 256; ++b) {
        char piece[8];
        std::snprintf(piece, sizeof piece, "<0x%02X>", b);
        byte_ids_[size_t(b)] = token_to_id(piece);
        if (byte_ids_[size_t(b)] < 0) have_all_bytes_ = false;
    }
    if (!options_.unk_token.empty()) unk_id_ = token_to_id(options_.unk_token);

    merges_.reserve(merges.size());
    const size_t prefix = options_.continuing_subword_prefix.size();
    for (size_t rank = 0; rank < merges.size(); ++rank) {
        const auto& [a, b] = merges[rank];
        const int32_t ia = token_to_id(a), ib = token_to_id(b);
        // The merged token drops the right part's continuation prefix ("##").
        const std::string merged =
            a + (prefix && b.compare(0, prefix, options_.continuing_subword_prefix) == 0
                     ? b.substr(prefix)
                     : b);
        const int32_t im = token_to_id(merged);
        if (ia < 0 || ib < 0 || im < 0) {
            throw Error(origin + ": merge " + std::to_string(rank) + " ('" + a + "' '" + b +
                        "') uses a token that is not in the vocabulary");
        }
        // The first occurrence of a pair has the lowest rank and wins, as in HF.
        merges_.emplace(pair_key(ia, ib), std::make_pair(int32_t(rank), im));
    }
}

int32_t BpeModel::token_to_id(std::string_view token) const {
    const auto it = vocab_.find(token);
    return it == vocab_.end() ? -1 : it->second;
}

const std::string& BpeModel::id_to_token(int32_t id) const {
    static const std::string empty;
    return id >= 0 && size_t(id) < tokens_.size() ? tokens_[size_t(id)] : empty;
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
    if (word.empty()) return;
    if (options_.ignore_merges) {
        const int32_t id = token_to_id(word);
        if (id >= 0) {
            out.push_back(id);
            return;
        }
    }
    if (word.size() > kMaxCachedWord) {
        merge_word(word, out);
        return;
    }
    {
        std::lock_guard lock(cache_mutex_);
        const auto it = cache_.find(word);
        if (it != cache_.end()) {
            out.insert(out.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    std::vector<int32_t> ids;
    merge_word(word, ids);
    out.insert(out.end(), ids.begin(), ids.end());
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(std::string(word), std::move(ids));
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
    struct Symbol {
        int32_t id;
        int32_t prev, next;
        bool alive;
    };
    std::vector<Symbol> symbols;
    symbols.reserve(word.size());
    auto push = [&](int32_t id) {
        const auto n = int32_t(symbols.size());
        symbols.push_back({id, n - 1, n + 1, true});
    };

    // Initial symbols: one per character (with the subword prefix/suffix decorations), byte
    // fallback or the unknown token for characters outside the vocabulary.
    bool prev_unknown = false;
    std::string piece;
    for (size_t pos = 0; pos < word.size();) {
        const size_t begin = pos;
        utf8::next(word, pos);
        piece.clear();
        if (begin > 0) piece += options_.continuing_subword_prefix;
        piece.append(word.substr(begin, pos - begin));
        if (pos == word.size()) piece += options_.end_of_word_suffix;
        const int32_t id = token_to_id(piece);
        if (id >= 0) {
            push(id);
            prev_unknown = false;
        } else if (options_.byte_fallback && have_all_bytes_) {
            for (size_t i = begin; i < pos; ++i)
                push(byte_ids_[static_cast<unsigned char>(word[i])]);
            prev_unknown = false;
        } else if (unk_id_ >= 0) {
            if (!(options_.fuse_unk && prev_unknown)) push(unk_id_);
            prev_unknown = true;
        }
    }
    if (symbols.empty()) return;
    symbols.back().next = -1;

    struct Candidate {
        int32_t rank, left, right, merged, left_id, right_id;
        // Lowest rank first, then leftmost, the order HF applies merges in.
        bool operator<(const Candidate& o) const {
            return rank != o.rank ? rank > o.rank : left > o.left;
        }
    };
    std::priority_queue<Candidate> queue;
    auto consider = [&](int32_t left, int32_t right) {
        if (left < 0 || right < 0) return;
        const auto it = merges_.find(pair_key(symbols[size_t(left)].id, symbols[size_t(right)].id));
        if (it == merges_.end()) return;
        queue.push({it->second.first, left, right, it->second.second, symbols[size_t(left)].id,
                    symbols[size_t(right)].id});
    };
    for (int32_t i = 0; i + 1 < int32_t(symbols.size()); ++i) consider(i, i + 1);

    while (!queue.empty()) {
        const Candidate c = queue.top();
        queue.pop();
        Symbol& l = symbols[size_t(c.left)];
        Symbol& r = symbols[size_t(c.right)];
        // Stale entries: a side was merged away or changed since the pair was queued.
        if (!l.alive || !r.alive || l.next != c.right || l.id != c.left_id || r.id != c.right_id)
            continue;
        l.id = c.merged;
        l.next = r.next;
        r.alive = false;
        if (r.next >= 0) symbols[size_t(r.next)].prev = c.left;
        consider(l.prev, c.left);
        consider(c.left, l.next);
    }
    for (int32_t i = 0; i >= 0; i = symbols[size_t(i)].next) out.push_back(symbols[size_t(i)].id);
}

}  // namespace moe
