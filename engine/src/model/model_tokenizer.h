#pragma once
// The tokenizer that belongs to a model path: a folder's tokenizer.json, or the vocabulary in
// a GGUF file's tokenizer.ggml.* metadata.
#include <memory>
#include <string>

#include "formats/gguf.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"

namespace moe {

// Throws moe::Error naming the file when the model has no usable tokenizer.
std::unique_ptr<Tokenizer> load_model_tokenizer(const std::string& path);

// The model's chat template: a folder's (see ChatTemplate::from_model_folder) or a GGUF file's
// tokenizer.chat_template with its BOS/EOS token strings.
ChatTemplate load_model_chat_template(const std::string& path);

// tokenizer.ggml.* of a GGUF file (moe::Error names the key when one is missing or malformed).
GgufVocab read_gguf_vocab(const GgufFile& file);

}  // namespace moe
