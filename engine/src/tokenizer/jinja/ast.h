#pragma once
// The parsed template: expression and statement trees. One node type each, tagged by kind,
// keeps the parser and evaluator short; the fields a kind uses are listed beside it.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace moe::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtList = std::vector<std::unique_ptr<Stmt>>;

struct Expr {
    enum class Kind {
        Literal,    // literal
        Name,       // name
        Attr,       // a.name
        Subscript,  // a[b]
        Slice,      // a[b:c:d] (absent parts are null)
        Call,       // a(args, kwargs)
        Filter,     // a | name(args, kwargs)
        Test,       // a is [not: negated] name(args, kwargs)
        Unary,      // name (op: "not", "-", "+") a
        Binary,     // a name(op) b; "and"/"or" short-circuit
        Ternary,    // b if a else c (c may be null)
        List,       // [args]
        Tuple,      // (args)
        DictLit,    // {keys: args[2i], values: args[2i+1]}
    };
    Kind kind;
    int line = 0;
    Value literal;
    std::string name;
    bool negated = false;
    ExprPtr a, b, c;
    std::vector<ExprPtr> args;
    std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

struct MacroParam {
    std::string name;
    ExprPtr default_value;  // null when required
};

struct Stmt {
    enum class Kind {
        Text,       // text
        Output,     // {{ expr }}
        If,         // branches: conds[i] -> bodies[i]; else_body
        For,        // targets in expr [if cond]: body, else_body
        Set,        // targets (or ns.attr: target_object.target_attr) = expr
        SetBlock,   // targets[0] = rendered body, through filters (expr is a Filter chain on null)
        Macro,      // name(params): body
        CallBlock,  // expr is the call; params are the caller's; body is the caller
        FilterBlock,  // body rendered, then the filter chain `expr` applied
        Break,
        Continue,
        Scope,  // body (generation blocks: no effect on rendering)
    };
    Kind kind;
    int line = 0;
    std::string text;
    ExprPtr expr;
    ExprPtr cond;
    std::vector<ExprPtr> conds;
    std::vector<StmtList> bodies;
    StmtList body;
    StmtList else_body;
    std::vector<std::string> targets;
    std::string target_attr;  // for `set ns.attr = ...`: targets[0] is the namespace
    std::string name;
    std::vector<MacroParam> params;
};

}  // namespace moe::jinja
