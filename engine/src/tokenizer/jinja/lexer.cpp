#include "tokenizer/jinja/lexer.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "tokenizer/jinja/value.h"

namespace moe::jinja {

namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string rstrip_all(const std::string& s) {
    size_t n = s.size();
    while (n > 0 && is_space(s[n - 1])) --n;
    return s.substr(0, n);
}

int count_newlines(const std::string& s, size_t from, size_t to) {
    return int(std::count(s.begin() + long(from), s.begin() + long(to), '\n'));
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xc0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out += char(0xe0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3f));
        out += char(0x80 | (cp & 0x3f));
    } else {
        out += char(0xf0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3f));
        out += char(0x80 | ((cp >> 6) & 0x3f));
        out += char(0x80 | (cp & 0x3f));
    }
}

class Lexer {
  public:
    Lexer(std::string src, const LexOptions& opt) : src_(std::move(src)), opt_(opt) {}

    std::vector<Token> run() {
        while (pos_ < src_.size()) {
            size_t start = find_tag(pos_);
            std::string text = src_.substr(pos_, start - pos_);
            if (start == src_.size()) {
                emit_text(text, line_);
                break;
            }
            char kind = src_[start + 1];  // '{', '%' or '#'
            char sign = start + 2 < src_.size() ? src_[start + 2] : '\0';
            int text_line = line_;
            line_ += count_newlines(src_, pos_, start);
            if (sign == '-') {
                text = rstrip_all(text);
            } else if (sign != '+' && opt_.lstrip_blocks && kind != '{') {
                // Only indentation between the line start and a block/comment tag is dropped.
                size_t l_pos = text.rfind('\n');
                l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
                if (l_pos > 0 || line_starting_) {
                    bool blank = l_pos < text.size();
                    for (size_t i = l_pos; i < text.size(); ++i)
                        if (!is_space(text[i])) blank = false;
                    if (blank) text.resize(l_pos);
                }
            }
            emit_text(text, text_line);
            pos_ = start + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
            if (kind == '#')
                lex_comment();
            else if (kind == '%' && try_raw())
                continue;
            else
                lex_tag(kind == '{');
        }
        tokens_.push_back({TokenType::End, "", line_});
        return std::move(tokens_);
    }

  private:
    size_t find_tag(size_t from) const {
        for (size_t i = from; i + 1 < src_.size(); ++i)
            if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#'))
                return i;
        return src_.size();
    }

    void emit_text(const std::string& text, int line) {
        if (!text.empty()) tokens_.push_back({TokenType::Text, text, line});
    }

    // After a tag's closing delimiter: `-` strips all following whitespace, trim_blocks drops
    // one newline after block and comment tags (`+` keeps it).
    void after_close(char sign, bool block_like) {
        if (sign == '-') {
            while (pos_ < src_.size() && is_space(src_[pos_])) {
                if (src_[pos_] == '\n') ++line_;
                ++pos_;
            }
        } else if (sign != '+' && block_like && opt_.trim_blocks && pos_ < src_.size() &&
                   src_[pos_] == '\n') {
            ++line_;
            ++pos_;
        }
        line_starting_ = pos_ > 0 && src_[pos_ - 1] == '\n';
    }

    void lex_comment() {
        size_t end = src_.find("#}", pos_);
        if (end == std::string::npos) throw Failure("unclosed comment: missing '#}'", line_);
        char sign =
            end > pos_ && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : 0;
        line_ += count_newlines(src_, pos_, end);
        pos_ = end + 2;
        after_close(sign, true);
    }

    // {% raw %}...{% endraw %}: the content is text, uninterpreted.
    bool try_raw() {
        size_t p = pos_;
        while (p < src_.size() && is_space(src_[p])) ++p;
        if (src_.compare(p, 3, "raw") != 0) return false;
        p += 3;
        while (p < src_.size() && is_space(src_[p])) ++p;
        char sign = 0;
        if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
        if (src_.compare(p, 2, "%}") != 0) return false;
        line_ += count_newlines(src_, pos_, p + 2);
        pos_ = p + 2;
        after_close(sign, true);
        for (size_t q = src_.find("{%", pos_); q != std::string::npos; q = src_.find("{%", q + 2)) {
            size_t r = q + 2;
            char open_sign = 0;
            if (r < src_.size() && (src_[r] == '-' || src_[r] == '+')) open_sign = src_[r++];
            while (r < src_.size() && is_space(src_[r])) ++r;
            if (src_.compare(r, 6, "endraw") != 0) continue;
            r += 6;
            while (r < src_.size() && is_space(src_[r])) ++r;
            char close_sign = 0;
            if (r < src_.size() && (src_[r] == '-' || src_[r] == '+')) close_sign = src_[r++];
            if (src_.compare(r, 2, "%}") != 0) continue;
            std::string text = src_.substr(pos_, q - pos_);
            if (open_sign == '-') text = rstrip_all(text);
            emit_text(text, line_);
            line_ += count_newlines(src_, pos_, r + 2);
            pos_ = r + 2;
            after_close(close_sign, true);
            return true;
        }
        throw Failure("missing {% endraw %} for {% raw %}", line_);
    }

    void lex_tag(bool variable) {
        const char* close = variable ? "}}" : "%}";
        tokens_.push_back({variable ? TokenType::VarBegin : TokenType::BlockBegin, "", line_});
        int depth = 0;  // brackets: a '}' inside a dict literal is not the end of {{ }}
        while (true) {
            while (pos_ < src_.size() && is_space(src_[pos_])) {
                if (src_[pos_] == '\n') ++line_;
                ++pos_;
            }
            if (pos_ >= src_.size())
                throw Failure(std::string("unexpected end of template: missing '") + close + "'",
                              line_);
            char c = src_[pos_];
            // Closing delimiter, possibly with a whitespace-control sign.
            if (depth == 0) {
                char sign = 0;
                size_t p = pos_;
                if ((c == '-' || c == '+') && src_.compare(p + 1, 2, close) == 0) sign = c, ++p;
                if (src_.compare(p, 2, close) == 0) {
                    pos_ = p + 2;
                    tokens_.push_back(
                        {variable ? TokenType::VarEnd : TokenType::BlockEnd, "", line_});
                    after_close(sign, !variable);
                    return;
                }
            }
            if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
                size_t b = pos_;
                while (pos_ < src_.size() &&
                       (std::isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_'))
                    ++pos_;
                tokens_.push_back({TokenType::Name, src_.substr(b, pos_ - b), line_});
            } else if (std::isdigit(static_cast<unsigned char>(c))) {
                lex_number();
            } else if (c == '\'' || c == '"') {
                lex_string(c);
            } else {
                static const char* two[] = {"//", "**", "==", "!=", "<=", ">="};
                std::string op;
                for (const char* t : two)
                    if (src_.compare(pos_, 2, t) == 0) op = t;
                if (op.empty()) {
                    if (!std::strchr("+-*/%~<>=.,:|()[]{}", c))
                        throw Failure(std::string("unexpected character '") + c + "' in tag",
                                      line_);
                    op = std::string(1, c);
                }
                if (op == "(" || op == "[" || op == "{") ++depth;
                if ((op == ")" || op == "]" || op == "}") && depth > 0) --depth;
                pos_ += op.size();
                tokens_.push_back({TokenType::Operator, op, line_});
            }
        }
    }

    void lex_number() {
        size_t b = pos_;
        bool is_float = false;
        auto digits = [&] {
            while (pos_ < src_.size() &&
                   (std::isdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_'))
                ++pos_;
        };
        digits();
        if (pos_ + 1 < src_.size() && src_[pos_] == '.' &&
            std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
            is_float = true;
            ++pos_;
            digits();
        }
        if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
            size_t p = pos_ + 1;
            if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
            if (p < src_.size() && std::isdigit(static_cast<unsigned char>(src_[p]))) {
                is_float = true;
                pos_ = p;
                digits();
            }
        }
        std::string text = src_.substr(b, pos_ - b);
        text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
        tokens_.push_back({is_float ? TokenType::Float : TokenType::Integer, text, line_});
    }

    void lex_string(char quote) {
        int start_line = line_;
        ++pos_;
        std::string out;
        while (true) {
            if (pos_ >= src_.size()) throw Failure("unterminated string literal", start_line);
            char c = src_[pos_++];
            if (c == quote) break;
            if (c == '\n') ++line_;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= src_.size()) throw Failure("unterminated string literal", start_line);
            char e = src_[pos_++];
            switch (e) {
                case 'n':
                    out += '\n';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'v':
                    out += '\v';
                    break;
                case 'a':
                    out += '\a';
                    break;
                case '0':
                    out += '\0';
                    break;
                case '\\':
                    out += '\\';
                    break;
                case '\'':
                    out += '\'';
                    break;
                case '"':
                    out += '"';
                    break;
                case '\n':
                    ++line_;
                    break;  // line continuation
                case 'x':
                case 'u':
                case 'U': {
                    size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                    if (pos_ + n > src_.size())
                        throw Failure("bad escape in string literal", line_);
                    for (size_t i = 0; i < n; ++i)
                        if (!std::isxdigit(static_cast<unsigned char>(src_[pos_ + i])))
                            throw Failure("bad escape in string literal: expected " +
                                              std::to_string(n) + " hex digits",
                                          line_);
                    const uint32_t cp = uint32_t(std::stoul(src_.substr(pos_, n), nullptr, 16));
                    if (cp > 0x10FFFF)
                        throw Failure("bad escape in string literal: no such code point", line_);
                    pos_ += n;
                    append_utf8(out, cp);
                    break;
                }
                default:  // Python keeps unknown escapes verbatim
                    out += '\\';
                    out += e;
            }
        }
        tokens_.push_back({TokenType::String, out, start_line});
    }

    std::string src_;
    LexOptions opt_;
    size_t pos_ = 0;
    int line_ = 1;
    bool line_starting_ = true;
    std::vector<Token> tokens_;
};

std::string normalize_newlines(const std::string& s, bool keep_trailing_newline) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r') {
            out += '\n';
            if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
        } else {
            out += s[i];
        }
    }
    if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

}  // namespace

std::vector<Token> tokenize(const std::string& source, const LexOptions& options) {
    return Lexer(normalize_newlines(source, options.keep_trailing_newline), options).run();
}

}  // namespace moe::jinja
