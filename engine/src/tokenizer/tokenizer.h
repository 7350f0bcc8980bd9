#pragma once
// Text <-> token ids behind one interface: Hugging Face tokenizer.json (byte-level BPE as in
// Qwen, DeepSeek, Llama 3; SentencePiece-style BPE with byte fallback as in Llama 2, Mistral)
// and GGUF vocabularies (gguf_vocab.h).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace moe {

// Ids of the model's special tokens; -1 when the tokenizer has none.
struct SpecialTokenIds {
    int32_t bos = -1;
    int32_t eos = -1;
    int32_t unk = -1;
    int32_t pad = -1;
    int32_t eot = -1;  // end of turn (GGUF tokenizer.ggml.eot_token_id)
};

class Tokenizer {
  public:
    virtual ~Tokenizer() = default;

    // Text -> ids. Special-token strings in the text ("<|im_end|>") always become their ids.
    // add_special adds what the model adds around a sequence (BOS, EOS), as HF's
    // add_special_tokens=True and llama.cpp's add_special do.
    std::vector<int32_t> encode(const std::string& text, bool add_special = false) const {
        return encode_impl(text, add_special);
    }
    // Ids -> text, always valid UTF-8 (broken byte sequences become U+FFFD).
    std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;
    // Ids -> the exact bytes, which may end inside a character (used for streaming).
    virtual std::string decode_bytes(const std::vector<int32_t>& ids,
                                     bool skip_special_tokens) const = 0;

    // The bytes one token contributes to the text in the middle of a sequence (may be part of
    // a UTF-8 character; special tokens give ""). For streaming, TokenStreamDecoder is exact
    // where this is not (the leading space of a SentencePiece text).
    virtual std::string token_bytes(int32_t id) const = 0;

    virtual int32_t vocab_size() const = 0;
    // The vocabulary entry as stored ("Ġhello", "▁hello", "<0x0A>"); "" when out of range.
    virtual std::string id_to_token(int32_t id) const = 0;
    // -1 when the string is not a vocabulary entry.
    virtual int32_t token_to_id(const std::string& token) const = 0;
    virtual bool is_special(int32_t id) const = 0;
    const SpecialTokenIds& special_ids() const { return special_; }

  protected:
    virtual std::vector<int32_t> encode_impl(const std::string& text, bool add_special) const = 0;
    SpecialTokenIds special_;
};

// Loads DIR/tokenizer.json and, when present, DIR/tokenizer_config.json (special tokens,
// add_bos_token/add_eos_token). Throws moe::Error naming the file when absent or unsupported.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir);

// Turns generated ids into text one id at a time. Each push returns only text that is final:
// never half a UTF-8 character, and with SentencePiece's leading-space rule and byte-fallback
// runs handled as a full decode would, so the concatenation of all pushes plus flush equals
// decode(all ids).
class TokenStreamDecoder {
  public:
    explicit TokenStreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false)
        : tokenizer_(tokenizer), skip_special_(skip_special_tokens) {}
    std::string push(int32_t id);
    // Whatever is held back at the end (a truncated character as U+FFFD).
    std::string flush();

  private:
    const Tokenizer& tokenizer_;
    bool skip_special_;
    std::vector<int32_t> ids_;
    size_t prefix_ = 0;  // first id of the context window that is decoded again
    size_t read_ = 0;    // ids before this one have been emitted
};

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
