#include "tokenizer/tokenizer.h"

#include "tokenizer/unicode.h"

namespace moe {

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
    return utf8::sanitize(decode_bytes(ids, skip_special_tokens));
}

// The text of a token depends on its neighbours (SentencePiece drops the leading space of
// the first token only; byte-fallback runs form one character), so each step decodes a small
// window again - the tokens since the last emitted boundary plus one of context - and emits
// what the new token added, once that ends on a complete character (HF's DecodeStream).
std::string TokenStreamDecoder::push(int32_t id) {
    ids_.push_back(id);
    const std::vector<int32_t> before(ids_.begin() + long(prefix_), ids_.begin() + long(read_));
    const std::vector<int32_t> window(ids_.begin() + long(prefix_), ids_.end());
    const std::string old_text = tokenizer_.decode_bytes(before, skip_special_);
    const std::string new_text = tokenizer_.decode_bytes(window, skip_special_);
    if (new_text.size() <= old_text.size() || utf8::incomplete_tail(new_text) != 0) return {};
    prefix_ = read_;
    read_ = ids_.size();
    return utf8::sanitize(std::string_view(new_text).substr(old_text.size()));
}

std::string TokenStreamDecoder::flush() {
    const std::vector<int32_t> before(ids_.begin() + long(prefix_), ids_.begin() + long(read_));
    const std::vector<int32_t> window(ids_.begin() + long(prefix_), ids_.end());
    const std::string old_text = tokenizer_.decode_bytes(before, skip_special_);
    const std::string new_text = tokenizer_.decode_bytes(window, skip_special_);
    ids_.clear();
    prefix_ = read_ = 0;
    if (new_text.size() <= old_text.size()) return {};
    return utf8::sanitize(std::string_view(new_text).substr(old_text.size()));
}

std::string Utf8StreamDecoder::push(const std::string& bytes) {
    pending_ += bytes;
    const size_t keep = utf8::incomplete_tail(pending_);
    std::string out = utf8::sanitize(std::string_view(pending_).substr(0, pending_.size() - keep));
    pending_.erase(0, pending_.size() - keep);
    return out;
}

std::string Utf8StreamDecoder::flush() {
    std::string out = utf8::sanitize(pending_);
    pending_.clear();
    return out;
}

}  // namespace moe
