#pragma once
// The stages of a Hugging Face tokenizer.json around the model: normalizer, pre-tokenizer and
// decoder, each built from its JSON object. Unsupported types throw moe::Error naming the file
// and the type, so that a tokenizer is never silently approximated.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe {

class Normalizer {
  public:
    virtual ~Normalizer() = default;
    virtual void normalize(std::string& text) const = 0;
};

// A pre-token: a piece of normalized text; `at_start` when it begins the whole input (the
// Metaspace "first" prepend scheme only adds its "▁" there).
struct PreToken {
    std::string text;
    bool at_start = false;
};

class PreTokenizer {
  public:
    virtual ~PreTokenizer() = default;
    virtual void split(std::vector<PreToken>& pieces) const = 0;
};

// HF decoders work on the list of token strings (decode_chain) and the result is their
// concatenation. Byte sequences are kept raw here; the caller makes the final text valid UTF-8.
class Decoder {
  public:
    virtual ~Decoder() = default;
    virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// Each returns nullptr for a JSON null. `origin` names the file in error messages.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j, const std::string& origin);
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j,
                                                 const std::string& origin);
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j, const std::string& origin);

}  // namespace moe
