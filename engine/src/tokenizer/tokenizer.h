#pragma once
// Text <-> token ids. This build reads byte-fallback vocabularies without merges (the demo
// model's); the full Hugging Face tokenizer.json and GGUF tokenizers replace it behind the
// same interface.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace moe {

class Tokenizer {
  public:
    virtual ~Tokenizer() = default;
    virtual std::vector<int32_t> encode(const std::string& text) const = 0;
    virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
    // The raw bytes of one token (may be part of a UTF-8 character).
    virtual std::string token_bytes(int32_t id) const = 0;
};

// Loads DIR/tokenizer.json. Throws moe::Error naming the file when absent or unsupported.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir);

// Streams token bytes and releases only complete UTF-8 characters, so that a character split
// across tokens is never printed broken.
class Utf8StreamDecoder {
  public:
    // Appends bytes; returns the complete prefix that can be shown now.
    std::string push(const std::string& bytes);
    // Whatever is left at the end (invalid or truncated sequences as U+FFFD).
    std::string flush();

  private:
    std::string pending_;
};

}  // namespace moe
