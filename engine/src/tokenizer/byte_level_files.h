#pragma once
// Writes a byte-level BPE tokenizer (tokenizer.json: the 256 bytes of GPT-2's alphabet with no
// merges, special tokens after them) and a tokenizer_config.json with a ChatML chat template:
// the vocabulary of the built-in demo model and of test models made from weight-only fixtures.
#include <string>
#include <vector>

namespace moe {

struct ByteLevelTokenizerSpec {
    std::vector<std::string> specials;  // ids 256, 257, ... in this order
    int vocab_size = 0;  // ids after the specials up to this are plain tokens "t<ID>"
    std::string eos_token;
};

// Throws moe::Error naming the file when it cannot be written.
void write_byte_level_tokenizer(const std::string& dir, const ByteLevelTokenizerSpec& spec);

}  // namespace moe
