#pragma once
// Executes a parsed template: scopes (a fresh one per loop iteration and macro call, as
// Jinja's), control flow, macros and call blocks, and the limits of RenderLimits.
#include <memory>
#include <string>
#include <unordered_map>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/template.h"

namespace moe::jinja {

struct Scope {
    std::shared_ptr<Scope> parent;
    std::unordered_map<std::string, Value> vars;

    const Value* lookup(const std::string& name) const;
};
using ScopePtr = std::shared_ptr<Scope>;

class Interpreter {
  public:
    explicit Interpreter(const RenderLimits& limits) : limits_(limits) {}

    enum class Flow { Normal, Break, Continue };
    Flow exec(const StmtList& body, const ScopePtr& scope, std::string& out);
    Value eval(const Expr& e, const ScopePtr& scope);

  private:
    Flow exec_one(const Stmt& s, const ScopePtr& scope, std::string& out);
    Flow exec_for(const Stmt& s, const ScopePtr& scope, std::string& out);
    void exec_set(const Stmt& s, const ScopePtr& scope, Value value);
    Value make_macro(const Stmt& s, const ScopePtr& scope, std::string name);
    Value eval_inner(const Expr& e, const ScopePtr& scope);
    Value eval_binary(const Expr& e, const ScopePtr& scope);
    Value apply_filters(const Expr* chain, Value subject, const ScopePtr& scope);
    CallArgs eval_args(const Expr& e, const ScopePtr& scope, size_t skip = 0);
    void append(std::string& out, const std::string& s);

    RenderLimits limits_;
    int depth_ = 0;
    int64_t iterations_ = 0;
};

}  // namespace moe::jinja
