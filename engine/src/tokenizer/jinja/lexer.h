#pragma once
// Splits a template into text and tag tokens, with Jinja's whitespace rules as transformers
// configures them: `-` strips whitespace beside a tag, trim_blocks drops the newline after a
// block or comment tag, lstrip_blocks drops the indentation before one, and one trailing
// newline of the template is dropped (keep_trailing_newline=False).
#include <string>
#include <vector>

namespace moe::jinja {

enum class TokenType {
    Text,        // literal template text
    VarBegin,    // {{
    VarEnd,      // }}
    BlockBegin,  // {%
    BlockEnd,    // %}
    Name,
    String,
    Integer,
    Float,
    Operator,  // punctuation and operators: + - * / // % ** ~ == != < > <= >= = . , : | ( ) [ ] { }
    End,
};

struct Token {
    TokenType type;
    std::string text;  // text, name, operator, or the decoded string literal
    int line;
};

struct LexOptions {
    bool trim_blocks = true;
    bool lstrip_blocks = true;
    bool keep_trailing_newline = false;
};

// Throws moe::jinja::Failure (with the line) on malformed input.
std::vector<Token> tokenize(const std::string& source, const LexOptions& options = {});

}  // namespace moe::jinja
