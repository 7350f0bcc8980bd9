#include "tokenizer/jinja/parser.h"

#include <set>

namespace moe::jinja {

namespace {

class Parser {
  public:
    Parser(const std::vector<Token>& tokens, const ParseHooks& hooks)
        : toks_(tokens), hooks_(hooks) {}

    StmtList run() {
        std::string end;
        StmtList body = parse_body({}, &end);
        if (!end.empty()) fail("unexpected '" + end + "' tag: no block is open");
        return body;
    }

  private:
    // ---- token helpers ----
    const Token& cur() const { return toks_[pos_]; }
    const Token& peek(size_t n = 1) const { return toks_[std::min(pos_ + n, toks_.size() - 1)]; }
    [[noreturn]] void fail(const std::string& msg) const { throw Failure(msg, cur().line); }
    bool is_op(const char* op) const {
        return cur().type == TokenType::Operator && cur().text == op;
    }
    bool is_name(const char* n) const { return cur().type == TokenType::Name && cur().text == n; }
    bool skip_op(const char* op) {
        if (!is_op(op)) return false;
        ++pos_;
        return true;
    }
    bool skip_name(const char* n) {
        if (!is_name(n)) return false;
        ++pos_;
        return true;
    }
    std::string describe(const Token& t) const {
        switch (t.type) {
            case TokenType::VarEnd:
                return "'}}'";
            case TokenType::BlockEnd:
                return "'%}'";
            case TokenType::End:
                return "end of template";
            case TokenType::Text:
                return "template text";
            default:
                return "'" + t.text + "'";
        }
    }
    void expect_op(const char* op) {
        if (!skip_op(op)) fail(std::string("expected '") + op + "', got " + describe(cur()));
    }
    std::string expect_name() {
        if (cur().type != TokenType::Name) fail("expected a name, got " + describe(cur()));
        return toks_[pos_++].text;
    }
    void expect(TokenType t) {
        if (cur().type != t)
            fail(std::string("expected ") + (t == TokenType::BlockEnd ? "'%}'" : "'}}'") +
                 ", got " + describe(cur()));
        ++pos_;
    }
    ExprPtr node(Expr::Kind k, int line) {
        auto e = std::make_unique<Expr>();
        e->kind = k;
        e->line = line;
        return e;
    }

    // ---- statements ----
    // Parses until a block tag named in `ends`; leaves the position after that name.
    StmtList parse_body(const std::set<std::string>& ends, std::string* end_found) {
        StmtList out;
        while (true) {
            const Token& t = cur();
            if (t.type == TokenType::End) {
                if (!ends.empty())
                    fail("unexpected end of template: expected " + join(ends) +
                         " to close a block");
                return out;
            }
            if (t.type == TokenType::Text) {
                auto s = std::make_unique<Stmt>();
                s->kind = Stmt::Kind::Text;
                s->line = t.line;
                s->text = t.text;
                out.push_back(std::move(s));
                ++pos_;
            } else if (t.type == TokenType::VarBegin) {
                ++pos_;
                auto s = std::make_unique<Stmt>();
                s->kind = Stmt::Kind::Output;
                s->line = t.line;
                s->expr = parse_tuple(true);
                expect(TokenType::VarEnd);
                out.push_back(std::move(s));
            } else if (t.type == TokenType::BlockBegin) {
                ++pos_;
                std::string name = expect_name();
                if (ends.count(name)) {
                    *end_found = name;
                    return out;
                }
                out.push_back(parse_statement(name, t.line));
            } else {
                fail("unexpected " + describe(t));
            }
        }
    }

    static std::string join(const std::set<std::string>& s) {
        std::string out;
        for (const auto& n : s) out += (out.empty() ? "'" : " or '") + n + "'";
        return out;
    }

    std::unique_ptr<Stmt> parse_statement(const std::string& name, int line) {
        auto s = std::make_unique<Stmt>();
        s->line = line;
        std::string end;
        if (name == "if") {
            s->kind = Stmt::Kind::If;
            ++if_depth_;
            s->conds.push_back(parse_tuple(true));
            expect(TokenType::BlockEnd);
            while (true) {
                s->bodies.push_back(parse_body({"elif", "else", "endif"}, &end));
                if (end == "elif") {
                    s->conds.push_back(parse_tuple(true));
                    expect(TokenType::BlockEnd);
                } else if (end == "else") {
                    expect(TokenType::BlockEnd);
                    s->else_body = parse_body({"endif"}, &end);
                    break;
                } else {
                    break;
                }
            }
            --if_depth_;
            expect(TokenType::BlockEnd);
        } else if (name == "for") {
            s->kind = Stmt::Kind::For;
            s->targets = parse_targets();
            if (!skip_name("in")) fail("expected 'in' in for loop, got " + describe(cur()));
            s->expr = parse_tuple(false);
            if (skip_name("if")) s->cond = parse_expression(true);
            if (is_name("recursive")) fail("recursive for loops are not supported");
            expect(TokenType::BlockEnd);
            s->body = parse_body({"else", "endfor"}, &end);
            if (end == "else") {
                expect(TokenType::BlockEnd);
                s->else_body = parse_body({"endfor"}, &end);
            }
            expect(TokenType::BlockEnd);
        } else if (name == "set") {
            if (cur().type == TokenType::Name && peek().type == TokenType::Operator &&
                peek().text == ".") {
                s->targets.push_back(expect_name());
                ++pos_;
                s->target_attr = expect_name();
            } else {
                s->targets = parse_targets();
            }
            if (skip_op("=")) {
                s->kind = Stmt::Kind::Set;
                s->expr = parse_tuple(true);
                expect(TokenType::BlockEnd);
            } else {
                s->kind = Stmt::Kind::SetBlock;
                if (s->targets.size() != 1 || !s->target_attr.empty())
                    fail("a block set assigns exactly one name");
                s->expr = parse_filter_chain(nullptr);
                expect(TokenType::BlockEnd);
                s->body = parse_body({"endset"}, &end);
                expect(TokenType::BlockEnd);
            }
        } else if (name == "macro") {
            s->kind = Stmt::Kind::Macro;
            s->name = expect_name();
            s->params = parse_params();
            expect(TokenType::BlockEnd);
            s->body = parse_body({"endmacro"}, &end);
            expect(TokenType::BlockEnd);
        } else if (name == "call") {
            s->kind = Stmt::Kind::CallBlock;
            if (is_op("(")) s->params = parse_params();
            s->expr = parse_expression(true);
            if (s->expr->kind != Expr::Kind::Call) fail("expected a macro call after 'call'");
            expect(TokenType::BlockEnd);
            s->body = parse_body({"endcall"}, &end);
            expect(TokenType::BlockEnd);
        } else if (name == "filter") {
            s->kind = Stmt::Kind::FilterBlock;
            s->expr = parse_filter_chain(nullptr, /*leading_pipe=*/false);
            expect(TokenType::BlockEnd);
            s->body = parse_body({"endfilter"}, &end);
            expect(TokenType::BlockEnd);
        } else if (name == "break" || name == "continue") {
            if (loop_depth_hint_ < 0) fail("'" + name + "' outside a loop");
            s->kind = name == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue;
            expect(TokenType::BlockEnd);
        } else if (name == "generation") {
            s->kind = Stmt::Kind::Scope;
            expect(TokenType::BlockEnd);
            s->body = parse_body({"endgeneration"}, &end);
            expect(TokenType::BlockEnd);
        } else {
            fail("unknown tag '" + name + "'");
        }
        return s;
    }

    std::vector<std::string> parse_targets() {
        std::vector<std::string> names;
        bool paren = skip_op("(");
        do {
            if (paren && is_op(")")) break;
            names.push_back(expect_name());
        } while (skip_op(","));
        if (paren) expect_op(")");
        return names;
    }

    std::vector<MacroParam> parse_params() {
        std::vector<MacroParam> params;
        expect_op("(");
        while (!is_op(")")) {
            MacroParam p;
            p.name = expect_name();
            if (skip_op("=")) p.default_value = parse_expression(true);
            params.push_back(std::move(p));
            if (!skip_op(",")) break;
        }
        expect_op(")");
        return params;
    }

    // `| f(args) | g` applied to `base` (null: the block's rendered body).
    ExprPtr parse_filter_chain(ExprPtr base, bool leading_pipe = true) {
        bool first = true;
        while ((first && !leading_pipe) || is_op("|")) {
            if (!(first && !leading_pipe)) ++pos_;
            first = false;
            base = parse_filter(std::move(base));
        }
        return base;
    }

    // ---- expressions ----
    ExprPtr parse_tuple(bool with_condexpr) {
        int line = cur().line;
        ExprPtr first = parse_expression(with_condexpr);
        if (!is_op(",")) return first;
        auto t = node(Expr::Kind::Tuple, line);
        t->args.push_back(std::move(first));
        while (skip_op(",")) {
            if (cur().type == TokenType::VarEnd || cur().type == TokenType::BlockEnd ||
                is_op(")") || is_name("if"))
                break;
            t->args.push_back(parse_expression(with_condexpr));
        }
        return t;
    }

    ExprPtr parse_expression(bool with_condexpr) {
        ExprPtr e = parse_or();
        if (!with_condexpr) return e;
        while (is_name("if")) {
            int line = cur().line;
            ++pos_;
            auto t = node(Expr::Kind::Ternary, line);
            t->a = parse_or();
            t->b = std::move(e);
            if (skip_name("else")) t->c = parse_expression(true);
            e = std::move(t);
        }
        return e;
    }

    ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, int line) {
        auto b = node(Expr::Kind::Binary, line);
        b->name = op;
        b->a = std::move(l);
        b->b = std::move(r);
        return b;
    }

    ExprPtr parse_or() {
        ExprPtr l = parse_and();
        while (is_name("or")) {
            int line = cur().line;
            ++pos_;
            l = binary("or", std::move(l), parse_and(), line);
        }
        return l;
    }

    ExprPtr parse_and() {
        ExprPtr l = parse_not();
        while (is_name("and")) {
            int line = cur().line;
            ++pos_;
            l = binary("and", std::move(l), parse_not(), line);
        }
        return l;
    }

    ExprPtr parse_not() {
        if (is_name("not")) {
            int line = cur().line;
            ++pos_;
            auto u = node(Expr::Kind::Unary, line);
            u->name = "not";
            u->a = parse_not();
            return u;
        }
        return parse_compare();
    }

    ExprPtr parse_compare() {
        ExprPtr l = parse_math1();
        static const std::set<std::string> ops = {"==", "!=", "<", ">", "<=", ">="};
        while (true) {
            int line = cur().line;
            std::string op;
            if (cur().type == TokenType::Operator && ops.count(cur().text)) {
                op = cur().text;
                ++pos_;
            } else if (is_name("in")) {
                op = "in";
                ++pos_;
            } else if (is_name("not") && peek().type == TokenType::Name && peek().text == "in") {
                op = "not in";
                pos_ += 2;
            } else {
                return l;
            }
            l = binary(op, std::move(l), parse_math1(), line);
        }
    }

    ExprPtr parse_math1() {
        ExprPtr l = parse_concat();
        while (is_op("+") || is_op("-")) {
            int line = cur().line;
            std::string op = toks_[pos_++].text;
            l = binary(op, std::move(l), parse_concat(), line);
        }
        return l;
    }

    ExprPtr parse_concat() {
        ExprPtr l = parse_math2();
        while (is_op("~")) {
            int line = cur().line;
            ++pos_;
            l = binary("~", std::move(l), parse_math2(), line);
        }
        return l;
    }

    ExprPtr parse_math2() {
        ExprPtr l = parse_pow();
        while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
            int line = cur().line;
            std::string op = toks_[pos_++].text;
            l = binary(op, std::move(l), parse_pow(), line);
        }
        return l;
    }

    ExprPtr parse_pow() {
        ExprPtr l = parse_unary(true);
        while (is_op("**")) {
            int line = cur().line;
            ++pos_;
            l = binary("**", std::move(l), parse_unary(true), line);
        }
        return l;
    }

    ExprPtr parse_unary(bool with_filter) {
        int line = cur().line;
        ExprPtr e;
        if (is_op("-") || is_op("+")) {
            auto u = node(Expr::Kind::Unary, line);
            u->name = toks_[pos_++].text;
            u->a = parse_unary(false);
            e = std::move(u);
        } else {
            e = parse_primary();
        }
        e = parse_postfix(std::move(e));
        if (with_filter) e = parse_filter_expr(std::move(e));
        return e;
    }

    ExprPtr parse_primary() {
        const Token& t = cur();
        switch (t.type) {
            case TokenType::Name: {
                ++pos_;
                auto e = node(Expr::Kind::Literal, t.line);
                if (t.text == "true" || t.text == "True")
                    e->literal = Value(true);
                else if (t.text == "false" || t.text == "False")
                    e->literal = Value(false);
                else if (t.text == "none" || t.text == "None")
                    e->literal = Value::none();
                else {
                    e->kind = Expr::Kind::Name;
                    e->name = t.text;
                }
                return e;
            }
            case TokenType::String: {
                auto e = node(Expr::Kind::Literal, t.line);
                std::string s;
                while (cur().type == TokenType::String) s += toks_[pos_++].text;
                e->literal = Value(s);
                return e;
            }
            case TokenType::Integer: {
                ++pos_;
                auto e = node(Expr::Kind::Literal, t.line);
                try {
                    e->literal = Value(int64_t(std::stoll(t.text)));
                } catch (const std::exception&) {
                    fail("integer literal out of range: " + t.text);
                }
                return e;
            }
            case TokenType::Float: {
                ++pos_;
                auto e = node(Expr::Kind::Literal, t.line);
                e->literal = Value(std::stod(t.text));
                return e;
            }
            case TokenType::Operator: {
                if (t.text == "(") {
                    ++pos_;
                    if (skip_op(")")) return node(Expr::Kind::Tuple, t.line);
                    ExprPtr first = parse_expression(true);
                    if (skip_op(")")) return first;
                    auto tup = node(Expr::Kind::Tuple, t.line);
                    tup->args.push_back(std::move(first));
                    while (skip_op(",")) {
                        if (is_op(")")) break;
                        tup->args.push_back(parse_expression(true));
                    }
                    expect_op(")");
                    return tup;
                }
                if (t.text == "[") {
                    ++pos_;
                    auto l = node(Expr::Kind::List, t.line);
                    while (!is_op("]")) {
                        l->args.push_back(parse_expression(true));
                        if (!skip_op(",")) break;
                    }
                    expect_op("]");
                    return l;
                }
                if (t.text == "{") {
                    ++pos_;
                    auto d = node(Expr::Kind::DictLit, t.line);
                    while (!is_op("}")) {
                        d->args.push_back(parse_expression(true));
                        expect_op(":");
                        d->args.push_back(parse_expression(true));
                        if (!skip_op(",")) break;
                    }
                    expect_op("}");
                    return d;
                }
                break;
            }
            default:
                break;
        }
        fail("unexpected " + describe(t) + " in expression");
    }

    ExprPtr parse_postfix(ExprPtr e) {
        while (true) {
            int line = cur().line;
            if (is_op(".")) {
                ++pos_;
                if (cur().type == TokenType::Integer) {
                    auto s = node(Expr::Kind::Subscript, line);
                    s->a = std::move(e);
                    s->b = node(Expr::Kind::Literal, line);
                    s->b->literal = Value(int64_t(std::stoll(toks_[pos_++].text)));
                    e = std::move(s);
                } else {
                    auto a = node(Expr::Kind::Attr, line);
                    a->a = std::move(e);
                    a->name = expect_name();
                    e = std::move(a);
                }
            } else if (is_op("[")) {
                ++pos_;
                e = parse_subscript(std::move(e), line);
            } else if (is_op("(")) {
                e = parse_call(std::move(e));
            } else {
                return e;
            }
        }
    }

    ExprPtr parse_subscript(ExprPtr obj, int line) {
        ExprPtr parts[3];
        int part = 0;
        bool is_slice = false;
        while (!is_op("]")) {
            if (is_op(":")) {
                ++pos_;
                is_slice = true;
                if (++part > 2) fail("too many ':' in slice");
                continue;
            }
            parts[part] = parse_expression(true);
            if (!is_slice && is_op(",")) fail("tuple subscripts are not supported");
        }
        expect_op("]");
        if (!is_slice) {
            if (!parts[0]) fail("empty subscript");
            auto s = node(Expr::Kind::Subscript, line);
            s->a = std::move(obj);
            s->b = std::move(parts[0]);
            return s;
        }
        auto s = node(Expr::Kind::Slice, line);
        s->a = std::move(obj);
        s->b = std::move(parts[0]);
        s->c = std::move(parts[1]);
        if (parts[2]) s->args.push_back(std::move(parts[2]));
        return s;
    }

    void parse_call_args(Expr& e) {
        expect_op("(");
        while (!is_op(")")) {
            if (is_op("*") || is_op("**")) fail("*args and **kwargs in calls are not supported");
            if (cur().type == TokenType::Name && peek().type == TokenType::Operator &&
                peek().text == "=") {
                std::string n = toks_[pos_].text;
                pos_ += 2;
                e.kwargs.emplace_back(n, parse_expression(true));
            } else {
                if (!e.kwargs.empty()) fail("positional argument follows keyword argument");
                e.args.push_back(parse_expression(true));
            }
            if (!skip_op(",")) break;
        }
        expect_op(")");
    }

    ExprPtr parse_call(ExprPtr callee) {
        auto c = node(Expr::Kind::Call, cur().line);
        c->a = std::move(callee);
        parse_call_args(*c);
        return c;
    }

    ExprPtr parse_filter(ExprPtr base) {
        int line = cur().line;
        auto f = node(Expr::Kind::Filter, line);
        f->name = expect_name();
        while (is_op(".")) {
            ++pos_;
            f->name += "." + expect_name();
        }
        if (if_depth_ == 0 && hooks_.has_filter && !hooks_.has_filter(f->name))
            fail("no filter named '" + f->name + "'");
        f->a = std::move(base);
        if (is_op("(")) parse_call_args(*f);
        return f;
    }

    ExprPtr parse_filter_expr(ExprPtr e) {
        while (true) {
            if (is_op("|")) {
                ++pos_;
                e = parse_filter(std::move(e));
            } else if (is_name("is")) {
                e = parse_test(std::move(e));
            } else if (is_op("(")) {
                e = parse_call(std::move(e));
            } else {
                return e;
            }
        }
    }

    ExprPtr parse_test(ExprPtr e) {
        int line = cur().line;
        ++pos_;  // 'is'
        auto t = node(Expr::Kind::Test, line);
        t->negated = skip_name("not");
        t->name = expect_name();
        if (if_depth_ == 0 && hooks_.has_test && !hooks_.has_test(t->name))
            fail("no test named '" + t->name + "'");
        t->a = std::move(e);
        if (is_op("(")) {
            parse_call_args(*t);
        } else if ((cur().type == TokenType::Name || cur().type == TokenType::String ||
                    cur().type == TokenType::Integer || cur().type == TokenType::Float ||
                    is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
            if (is_name("is")) fail("you cannot chain multiple tests with 'is'");
            t->args.push_back(parse_postfix(parse_primary()));
        }
        return t;
    }

    const std::vector<Token>& toks_;
    const ParseHooks& hooks_;
    size_t pos_ = 0;
    int if_depth_ = 0;
    int loop_depth_hint_ = 0;  // break/continue outside loops are caught at run time
};

}  // namespace

StmtList parse(const std::vector<Token>& tokens, const ParseHooks& hooks) {
    return Parser(tokens, hooks).run();
}

}  // namespace moe::jinja
