#pragma once
// UTF-8 helpers shared by the tokenizers: code point iteration, the GPT-2 byte <-> character
// table of byte-level BPE, and the checks that keep streamed text from breaking a character.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace moe::utf8 {

// Length of the UTF-8 sequence that starts with `lead` (1 for stray continuation bytes, so that
// iteration always advances).
size_t sequence_length(unsigned char lead);

// Appends code point `cp` encoded as UTF-8.
void append(std::string& out, uint32_t cp);

// Decodes the code point at `pos` (invalid input yields the lead byte's value) and advances pos.
uint32_t next(std::string_view s, size_t& pos);

// Number of bytes at the end of `s` that form the start of a multi-byte character whose
// remaining bytes have not arrived yet (0 when `s` ends on a character boundary or with bytes
// that can never become valid).
size_t incomplete_tail(std::string_view s);

// `s` with every invalid or truncated sequence replaced by U+FFFD, as Hugging Face's
// from_utf8_lossy does, so that decoded text is always valid UTF-8.
std::string sanitize(std::string_view s);

bool is_valid(std::string_view s);

// Unicode White_Space.
bool is_whitespace(uint32_t cp);

// GPT-2 byte-level alphabet: every byte maps to one printable character so BPE vocabularies
// never contain raw control bytes or spaces ("Ġ" is the space).
const std::string& byte_to_char(unsigned char b);
// Inverse mapping; returns -1 for characters outside the alphabet.
int char_to_byte(uint32_t cp);
// The whole string mapped byte by byte.
std::string byte_level_encode(std::string_view s);

}  // namespace moe::utf8
