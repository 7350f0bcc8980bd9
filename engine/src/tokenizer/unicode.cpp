#include "tokenizer/unicode.h"

#include <array>
#include <unordered_map>

namespace moe::utf8 {

size_t sequence_length(unsigned char lead) {
    if (lead < 0x80) return 1;
    if ((lead >> 5) == 0x6) return 2;
    if ((lead >> 4) == 0xE) return 3;
    if ((lead >> 3) == 0x1E) return 4;
    return 1;
}

void append(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

uint32_t next(std::string_view s, size_t& pos) {
    const auto lead = static_cast<unsigned char>(s[pos]);
    const size_t len = sequence_length(lead);
    if (len == 1 || pos + len > s.size()) {
        ++pos;
        return lead;
    }
    uint32_t cp = lead & (0x7F >> len);
    for (size_t i = 1; i < len; ++i)
        cp = (cp << 6) | (static_cast<unsigned char>(s[pos + i]) & 0x3F);
    pos += len;
    return cp;
}

namespace {

// Length of the valid sequence at `pos`, 0 if invalid, or SIZE_MAX if valid so far but cut off
// by the end of the string.
size_t valid_at(std::string_view s, size_t pos) {
    const auto c = static_cast<unsigned char>(s[pos]);
    if (c < 0x80) return 1;
    size_t len;
    uint32_t min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, min = 0x10000;
    } else {
        return 0;
    }
    uint32_t cp = c & (0x7F >> len);
    for (size_t i = 1; i < len; ++i) {
        if (pos + i >= s.size()) return SIZE_MAX;
        const auto cc = static_cast<unsigned char>(s[pos + i]);
        if ((cc & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (cc & 0x3F);
        // Reject overlong forms, surrogates and out-of-range values as soon as the second byte
        // shows them, as a strict decoder does.
        if (i == 1) {
            if (len == 3 && c == 0xE0 && cc < 0xA0) return 0;
            if (len == 3 && c == 0xED && cc >= 0xA0) return 0;
            if (len == 4 && c == 0xF0 && cc < 0x90) return 0;
            if (len == 4 && c == 0xF4 && cc >= 0x90) return 0;
        }
    }
    return cp >= min ? len : 0;
}

}  // namespace

size_t incomplete_tail(std::string_view s) {
    // A character is at most 4 bytes: only the last 3 can be an unfinished start.
    const size_t from = s.size() > 3 ? s.size() - 3 : 0;
    for (size_t pos = from; pos < s.size(); ++pos) {
        const auto c = static_cast<unsigned char>(s[pos]);
        if ((c & 0xC0) == 0x80) continue;
        if (valid_at(s, pos) == SIZE_MAX) return s.size() - pos;
    }
    return 0;
}

std::string sanitize(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    size_t pos = 0;
    while (pos < s.size()) {
        const size_t len = valid_at(s, pos);
        if (len == 0 || len == SIZE_MAX) {
            out += "\xEF\xBF\xBD";
            // Skip the maximal invalid subpart: the lead byte and any continuation bytes that
            // were part of its (broken) sequence.
            ++pos;
            while (pos < s.size() && (static_cast<unsigned char>(s[pos]) & 0xC0) == 0x80 &&
                   len == SIZE_MAX)
                ++pos;
            continue;
        }
        out.append(s.substr(pos, len));
        pos += len;
    }
    return out;
}

bool is_valid(std::string_view s) {
    for (size_t pos = 0; pos < s.size();) {
        const size_t len = valid_at(s, pos);
        if (len == 0 || len == SIZE_MAX) return false;
        pos += len;
    }
    return true;
}

bool is_whitespace(uint32_t cp) {
    return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

namespace {

struct ByteTable {
    std::array<std::string, 256> to_char;
    std::unordered_map<uint32_t, int> to_byte;
    ByteTable() {
        // Printable Latin-1 bytes stand for themselves; the rest are shifted to U+0100 upwards
        // in byte order (the table of GPT-2's bytes_to_unicode).
        uint32_t shifted = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable =
                (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            const uint32_t cp = printable ? uint32_t(b) : shifted++;
            append(to_char[size_t(b)], cp);
            to_byte[cp] = b;
        }
    }
};

const ByteTable& table() {
    static const ByteTable t;
    return t;
}

}  // namespace

const std::string& byte_to_char(unsigned char b) {
    return table().to_char[b];
}

int char_to_byte(uint32_t cp) {
    const auto& m = table().to_byte;
    const auto it = m.find(cp);
    return it == m.end() ? -1 : it->second;
}

std::string byte_level_encode(std::string_view s) {
    const auto& t = table().to_char;
    std::string out;
    out.reserve(s.size() * 2);
    for (unsigned char c : s) out += t[c];
    return out;
}

}  // namespace moe::utf8
