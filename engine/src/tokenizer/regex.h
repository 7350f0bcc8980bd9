#pragma once
// Unicode regular expressions for pre-tokenizers. Hugging Face uses Oniguruma and llama.cpp a
// hand-written matcher; PCRE2 with UTF and UCP gives the same \p{L}, \p{N}, \s and lookahead
// semantics on these patterns, which std::regex (no Unicode classes) cannot.
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moe {

class Regex {
  public:
    // Throws moe::Error naming `origin` when the pattern does not compile.
    Regex(const std::string& pattern, const std::string& origin);
    ~Regex();
    Regex(const Regex&) = delete;
    Regex& operator=(const Regex&) = delete;

    // Non-overlapping, non-empty matches from left to right as [begin, end) byte offsets.
    std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

    // Escapes `literal` so that it matches itself.
    static std::string escape(std::string_view literal);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace moe
