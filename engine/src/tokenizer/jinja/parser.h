#pragma once
// Recursive-descent parser for the Jinja subset chat templates use, with Jinja's operator
// precedence (filters and tests bind tighter than arithmetic; `not` looser than comparisons).
#include <functional>
#include <string>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

namespace moe::jinja {

struct ParseHooks {
    // Jinja rejects unknown filters/tests at compile time unless they sit inside an `if`
    // (then only when reached); these say which names exist.
    std::function<bool(const std::string&)> has_filter;
    std::function<bool(const std::string&)> has_test;
};

// Throws moe::jinja::Failure with the line on syntax errors.
StmtList parse(const std::vector<Token>& tokens, const ParseHooks& hooks);

}  // namespace moe::jinja
