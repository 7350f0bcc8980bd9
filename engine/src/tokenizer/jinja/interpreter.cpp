#include "tokenizer/jinja/interpreter.h"

#include <cmath>

#include "tokenizer/jinja/builtins.h"

namespace moe::jinja {

const Value* Scope::lookup(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent.get()) {
        auto it = s->vars.find(name);
        if (it != s->vars.end()) return &it->second;
    }
    return nullptr;
}

namespace {

struct DepthGuard {
    int& depth;
    ~DepthGuard() { --depth; }
};

[[noreturn]] void type_error(const char* op, const Value& l, const Value& r) {
    throw Failure(std::string("unsupported operand type(s) for ") + op + ": '" + l.type_name() +
                  "' and '" + r.type_name() + "'");
}

std::optional<int64_t> slice_bound(const Value& v) {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!v.is_int() && !v.is_bool())
        throw Failure("slice indices must be integers or None, not " + v.type_name());
    return v.as_int();
}

int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
}

}  // namespace

void Interpreter::append(std::string& out, const std::string& s) {
    if (out.size() + s.size() > limits_.max_output_bytes)
        throw Failure("template output exceeds " + std::to_string(limits_.max_output_bytes) +
                      " bytes: runaway template?");
    out += s;
}

Interpreter::Flow Interpreter::exec(const StmtList& body, const ScopePtr& scope, std::string& out) {
    for (const auto& s : body) {
        Flow f;
        try {
            f = exec_one(*s, scope, out);
        } catch (Failure& e) {
            if (e.line == 0) e.line = s->line;
            throw;
        }
        if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
}

Interpreter::Flow Interpreter::exec_one(const Stmt& s, const ScopePtr& scope, std::string& out) {
    switch (s.kind) {
        case Stmt::Kind::Text:
            append(out, s.text);
            return Flow::Normal;
        case Stmt::Kind::Output:
            append(out, eval(*s.expr, scope).str());
            return Flow::Normal;
        case Stmt::Kind::If:
            for (size_t i = 0; i < s.conds.size(); ++i)
                if (eval(*s.conds[i], scope).truthy()) return exec(s.bodies[i], scope, out);
            return exec(s.else_body, scope, out);
        case Stmt::Kind::For:
            return exec_for(s, scope, out);
        case Stmt::Kind::Set:
            exec_set(s, scope, eval(*s.expr, scope));
            return Flow::Normal;
        case Stmt::Kind::SetBlock: {
            std::string body;
            exec(s.body, scope, body);
            exec_set(s, scope, apply_filters(s.expr.get(), Value(body), scope));
            return Flow::Normal;
        }
        case Stmt::Kind::Macro:
            scope->vars[s.name] = make_macro(s, scope, s.name);
            return Flow::Normal;
        case Stmt::Kind::CallBlock: {
            const Expr& call = *s.expr;
            Value callee = eval(*call.a, scope);
            CallArgs args = eval_args(call, scope);
            args.named.emplace_back("caller", make_macro(s, scope, "caller"));
            append(out, callee.call(args).str());
            return Flow::Normal;
        }
        case Stmt::Kind::FilterBlock: {
            std::string body;
            exec(s.body, scope, body);
            append(out, apply_filters(s.expr.get(), Value(body), scope).str());
            return Flow::Normal;
        }
        case Stmt::Kind::Break:
            return Flow::Break;
        case Stmt::Kind::Continue:
            return Flow::Continue;
        case Stmt::Kind::Scope:
            return exec(s.body, scope, out);
    }
    return Flow::Normal;
}

namespace {

void bind_targets(Scope& scope, const std::vector<std::string>& targets, const Value& item) {
    if (targets.size() == 1) {
        scope.vars[targets[0]] = item;
        return;
    }
    ValueList parts = iterate(item);
    if (parts.size() != targets.size())
        throw Failure(
            parts.size() > targets.size()
                ? "too many values to unpack (expected " + std::to_string(targets.size()) + ")"
                : "not enough values to unpack (expected " + std::to_string(targets.size()) +
                      ", got " + std::to_string(parts.size()) + ")");
    for (size_t i = 0; i < targets.size(); ++i) scope.vars[targets[i]] = parts[i];
}

}  // namespace

Interpreter::Flow Interpreter::exec_for(const Stmt& s, const ScopePtr& scope, std::string& out) {
    Value iterable = eval(*s.expr, scope);
    ValueList items = iterate(iterable);
    if (s.cond) {
        ValueList kept;
        for (const auto& item : items) {
            auto tmp = std::make_shared<Scope>();
            tmp->parent = scope;
            bind_targets(*tmp, s.targets, item);
            if (eval(*s.cond, tmp).truthy()) kept.push_back(item);
        }
        items = std::move(kept);
    }
    if (items.empty()) return exec(s.else_body, scope, out);
    const int64_t n = int64_t(items.size());
    for (int64_t i = 0; i < n; ++i) {
        if (++iterations_ > limits_.max_loop_iterations)
            throw Failure("more than " + std::to_string(limits_.max_loop_iterations) +
                          " loop iterations: runaway template?");
        auto iter = std::make_shared<Scope>();
        iter->parent = scope;
        bind_targets(*iter, s.targets, items[size_t(i)]);
        Value loop = Value::dict();
        Dict& d = loop.dict_ref();
        d.set(Value("index"), Value(i + 1));
        d.set(Value("index0"), Value(i));
        d.set(Value("revindex"), Value(n - i));
        d.set(Value("revindex0"), Value(n - i - 1));
        d.set(Value("first"), Value(i == 0));
        d.set(Value("last"), Value(i == n - 1));
        d.set(Value("length"), Value(n));
        d.set(Value("depth"), Value(1));
        d.set(Value("depth0"), Value(0));
        d.set(Value("previtem"),
              i > 0 ? items[size_t(i - 1)] : Value::undefined("there is no previous item"));
        d.set(Value("nextitem"),
              i + 1 < n ? items[size_t(i + 1)] : Value::undefined("there is no next item"));
        d.set(Value("cycle"), Value::function("loop.cycle", [i](CallArgs& a) {
                  if (a.positional.empty()) throw Failure("no items for cycling given");
                  return a.positional[size_t(i) % a.positional.size()];
              }));
        iter->vars["loop"] = loop;
        Flow f = exec(s.body, iter, out);
        if (f == Flow::Break) break;
    }
    return Flow::Normal;
}

void Interpreter::exec_set(const Stmt& s, const ScopePtr& scope, Value value) {
    if (!s.target_attr.empty()) {
        const Value* ns = scope->lookup(s.targets[0]);
        if (!ns || !ns->is_namespace())
            throw Failure("cannot assign attribute on non-namespace object '" + s.targets[0] + "'");
        ns->dict_ref().set(Value(s.target_attr), std::move(value));
        return;
    }
    bind_targets(*scope, s.targets, value);
}

Value Interpreter::make_macro(const Stmt& s, const ScopePtr& scope, std::string name) {
    // A weak reference: the defining scope holds the macro, so a strong one would be a cycle.
    std::weak_ptr<Scope> weak = scope;
    const Stmt* stmt = &s;
    return Value::function(name, [this, stmt, weak, name](CallArgs& a) -> Value {
        ScopePtr defining = weak.lock();
        if (!defining) throw Failure("macro '" + name + "' called after its scope ended");
        if (++depth_ > limits_.max_call_depth)
            throw Failure("maximum macro recursion depth (" +
                          std::to_string(limits_.max_call_depth) + ") exceeded in '" + name + "'");
        DepthGuard guard{depth_};
        auto ms = std::make_shared<Scope>();
        ms->parent = defining;
        const auto& params = stmt->params;
        ValueList varargs;
        for (size_t i = 0; i < a.positional.size(); ++i) {
            if (i < params.size())
                ms->vars[params[i].name] = a.positional[i];
            else
                varargs.push_back(a.positional[i]);
        }
        Value kwargs = Value::dict();
        for (auto& [n, v] : a.named) {
            bool is_param = false;
            for (const auto& p : params) is_param = is_param || p.name == n;
            if (is_param || n == "caller")
                ms->vars[n] = v;
            else
                kwargs.dict_ref().set(Value(n), v);
        }
        for (const auto& p : params) {
            if (ms->vars.count(p.name)) continue;
            ms->vars[p.name] =
                p.default_value ? eval(*p.default_value, ms)
                                : Value::undefined("parameter '" + p.name + "' was not provided");
        }
        ms->vars["varargs"] = Value::list(std::move(varargs));
        ms->vars["kwargs"] = kwargs;
        std::string out;
        exec(stmt->body, ms, out);
        return Value(out);
    });
}

Value Interpreter::eval(const Expr& e, const ScopePtr& scope) {
    try {
        return eval_inner(e, scope);
    } catch (Failure& f) {
        if (f.line == 0) f.line = e.line;
        throw;
    }
}

CallArgs Interpreter::eval_args(const Expr& e, const ScopePtr& scope, size_t skip) {
    CallArgs args;
    args.line = e.line;
    for (size_t i = skip; i < e.args.size(); ++i)
        args.positional.push_back(eval(*e.args[i], scope));
    for (const auto& [n, x] : e.kwargs) args.named.emplace_back(n, eval(*x, scope));
    return args;
}

Value Interpreter::apply_filters(const Expr* chain, Value subject, const ScopePtr& scope) {
    if (!chain) return subject;
    Value base = chain->a ? apply_filters(chain->a.get(), std::move(subject), scope) : subject;
    FilterFunction f = find_filter(chain->name);
    if (!f) throw Failure("no filter named '" + chain->name + "'", chain->line);
    CallArgs args = eval_args(*chain, scope);
    return f(base, args);
}

Value Interpreter::eval_inner(const Expr& e, const ScopePtr& scope) {
    switch (e.kind) {
        case Expr::Kind::Literal:
            return e.literal;
        case Expr::Kind::Name: {
            const Value* v = scope->lookup(e.name);
            return v ? *v : Value::undefined("'" + e.name + "' is undefined");
        }
        case Expr::Kind::Attr:
            return get_attr(eval(*e.a, scope), e.name);
        case Expr::Kind::Subscript:
            return get_item(eval(*e.a, scope), eval(*e.b, scope));
        case Expr::Kind::Slice: {
            Value obj = eval(*e.a, scope);
            auto bound = [&](const ExprPtr& p) {
                return p ? slice_bound(eval(*p, scope)) : std::nullopt;
            };
            std::optional<int64_t> step =
                e.args.empty() ? std::nullopt : slice_bound(eval(*e.args[0], scope));
            return slice_value(obj, bound(e.b), bound(e.c), step);
        }
        case Expr::Kind::Call: {
            Value callee = eval(*e.a, scope);
            CallArgs args = eval_args(e, scope);
            return callee.call(args);
        }
        case Expr::Kind::Filter: {
            FilterFunction f = find_filter(e.name);
            if (!f) throw Failure("no filter named '" + e.name + "'");
            Value subject = eval(*e.a, scope);
            CallArgs args = eval_args(e, scope);
            return f(subject, args);
        }
        case Expr::Kind::Test: {
            TestFunction t = find_test(e.name);
            if (!t) throw Failure("no test named '" + e.name + "'");
            Value subject = eval(*e.a, scope);
            CallArgs args = eval_args(e, scope);
            return Value(t(subject, args) != e.negated);
        }
        case Expr::Kind::Unary: {
            Value v = eval(*e.a, scope);
            if (e.name == "not") return Value(!v.truthy());
            if (v.is_undefined()) v.fail_undefined();
            if (!v.is_number())
                throw Failure("bad operand type for unary " + e.name + ": '" + v.type_name() + "'");
            if (e.name == "+") return v.is_float() ? v : Value(v.as_int());
            return v.is_float() ? Value(-v.as_double()) : Value(-v.as_int());
        }
        case Expr::Kind::Binary:
            return eval_binary(e, scope);
        case Expr::Kind::Ternary:
            if (eval(*e.a, scope).truthy()) return eval(*e.b, scope);
            return e.c ? eval(*e.c, scope)
                       : Value::undefined(
                             "the inline if-expression evaluated to false and no else section was "
                             "defined.");
        case Expr::Kind::List:
        case Expr::Kind::Tuple: {
            ValueList items;
            for (const auto& x : e.args) items.push_back(eval(*x, scope));
            return Value::list(std::move(items), e.kind == Expr::Kind::Tuple);
        }
        case Expr::Kind::DictLit: {
            Value d = Value::dict();
            for (size_t i = 0; i + 1 < e.args.size(); i += 2)
                d.dict_ref().set(eval(*e.args[i], scope), eval(*e.args[i + 1], scope));
            return d;
        }
    }
    throw Failure("unknown expression");
}

Value Interpreter::eval_binary(const Expr& e, const ScopePtr& scope) {
    const std::string& op = e.name;
    if (op == "and") {
        Value l = eval(*e.a, scope);
        return l.truthy() ? eval(*e.b, scope) : l;
    }
    if (op == "or") {
        Value l = eval(*e.a, scope);
        return l.truthy() ? l : eval(*e.b, scope);
    }
    Value l = eval(*e.a, scope);
    Value r = eval(*e.b, scope);
    if (op == "==") return Value(Value::equals(l, r));
    if (op == "!=") return Value(!Value::equals(l, r));
    if (op == "in") return Value(contains(r, l));
    if (op == "not in") return Value(!contains(r, l));
    if (op == "~") {
        std::string s = l.str();
        append(s, r.str());
        return Value(std::move(s));
    }
    if (l.is_undefined()) l.fail_undefined();
    if (r.is_undefined()) r.fail_undefined();
    if (op == "<") return Value(Value::less(l, r));
    if (op == ">") return Value(Value::less(r, l));
    if (op == "<=") return Value(!Value::less(r, l));
    if (op == ">=") return Value(!Value::less(l, r));
    const bool nums = l.is_number() && r.is_number();
    const bool floats = nums && (l.is_float() || r.is_float());
    if (op == "+") {
        if (nums)
            return floats ? Value(l.as_double() + r.as_double()) : Value(l.as_int() + r.as_int());
        if (l.is_string() && r.is_string()) {
            std::string s = l.as_string();
            append(s, r.as_string());
            return Value(std::move(s));
        }
        if (l.is_list() && r.is_list()) {
            ValueList items = l.items();
            items.insert(items.end(), r.items().begin(), r.items().end());
            return Value::list(std::move(items), l.is_tuple());
        }
        if (l.is_string())
            throw Failure("can only concatenate str (not \"" + r.type_name() + "\") to str");
        type_error("+", l, r);
    }
    if (op == "-") {
        if (!nums) type_error("-", l, r);
        return floats ? Value(l.as_double() - r.as_double()) : Value(l.as_int() - r.as_int());
    }
    if (op == "*") {
        if (nums)
            return floats ? Value(l.as_double() * r.as_double()) : Value(l.as_int() * r.as_int());
        const Value& seq = l.is_number() ? r : l;
        const Value& count = l.is_number() ? l : r;
        if ((seq.is_string() || seq.is_list()) && (count.is_int() || count.is_bool())) {
            int64_t n = std::max<int64_t>(0, count.as_int());
            size_t unit = seq.is_string() ? seq.as_string().size() : seq.items().size() * 16;
            if (unit * size_t(n) > limits_.max_output_bytes)
                throw Failure("sequence repetition too large: runaway template?");
            if (seq.is_string()) {
                std::string s;
                for (int64_t i = 0; i < n; ++i) s += seq.as_string();
                return Value(std::move(s));
            }
            ValueList items;
            for (int64_t i = 0; i < n; ++i)
                items.insert(items.end(), seq.items().begin(), seq.items().end());
            return Value::list(std::move(items), seq.is_tuple());
        }
        type_error("*", l, r);
    }
    if (op == "%" && l.is_string()) return Value(percent_format(l.as_string(), r));
    if (!nums) type_error(op.c_str(), l, r);
    if (op == "/") {
        if (r.as_double() == 0) throw Failure("division by zero");
        return Value(l.as_double() / r.as_double());
    }
    if (op == "//") {
        if (r.as_double() == 0) throw Failure("integer division or modulo by zero");
        if (floats) return Value(std::floor(l.as_double() / r.as_double()));
        return Value(floor_div(l.as_int(), r.as_int()));
    }
    if (op == "%") {
        if (r.as_double() == 0) throw Failure("integer division or modulo by zero");
        if (floats) {
            double m = std::fmod(l.as_double(), r.as_double());
            if (m != 0 && ((m < 0) != (r.as_double() < 0))) m += r.as_double();
            return Value(m);
        }
        return Value(l.as_int() - floor_div(l.as_int(), r.as_int()) * r.as_int());
    }
    if (op == "**") {
        if (!floats && r.as_int() >= 0) {
            int64_t result = 1;
            for (int64_t i = 0; i < r.as_int() && i < 64; ++i) result *= l.as_int();
            return Value(result);
        }
        return Value(std::pow(l.as_double(), r.as_double()));
    }
    throw Failure("unknown operator '" + op + "'");
}

}  // namespace moe::jinja
