#pragma once
// Tokenizers from GGUF metadata (tokenizer.ggml.*), with llama.cpp's semantics so that a GGUF
// model tokenizes here exactly as in llama.cpp. The GGUF reader fills the struct; this file
// knows nothing about the file format.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace moe {

// GGUF token types (tokenizer.ggml.token_type), as llama.cpp numbers them.
enum class GgufTokenType : int32_t {
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
};

struct GgufVocab {
    std::string model;  // tokenizer.ggml.model: "llama" (SentencePiece) or "gpt2" (BPE)
    std::string pre;    // tokenizer.ggml.pre: "llama-bpe", "qwen2", "deepseek-v3", ...
    std::vector<std::string> tokens;  // tokenizer.ggml.tokens
    std::vector<float> scores;        // tokenizer.ggml.scores (SentencePiece merge priority)
    std::vector<int32_t> token_type;  // tokenizer.ggml.token_type (GgufTokenType values)
    std::vector<std::string> merges;  // tokenizer.ggml.merges, "a b" in rank order
    // Special ids (tokenizer.ggml.*_token_id); unset means llama.cpp's default for the model
    // (llama: bos 1, eos 2, unk 0; gpt2: none).
    std::optional<int32_t> bos_id, eos_id, unk_id, pad_id, eot_id;
    // tokenizer.ggml.add_bos_token / add_eos_token / add_space_prefix; unset means
    // llama.cpp's default for the model and pre-tokenizer.
    std::optional<bool> add_bos, add_eos, add_space_prefix;
};

// Throws moe::Error for an unknown model or pre-tokenizer, or inconsistent arrays.
std::unique_ptr<Tokenizer> tokenizer_from_gguf(const GgufVocab& vocab);

}  // namespace moe
