#include "tokenizer/jinja/template.h"

#include <stdexcept>

#include "core/error.h"
#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/parser.h"

namespace moe::jinja {

struct StmtListHolder {
    StmtList body;
};

namespace {

Error located(const std::string& name, const Failure& f) {
    return Error(name + ", line " + std::to_string(f.line) + ": " + f.what());
}

// std::stoll and friends on a literal out of range, or another check of the standard library
// (fuzz_jinja found a hex escape without hex digits): still an error of the template, without
// a line.
Error unlocated(const std::string& name, const std::logic_error& e) {
    return Error(name + ": malformed template (" + e.what() + ")");
}

}  // namespace

Template::Template(const std::string& source, std::string name, RenderLimits limits)
    : name_(std::move(name)), limits_(limits) {
    ParseHooks hooks;
    hooks.has_filter = [](const std::string& n) { return find_filter(n) != nullptr; };
    hooks.has_test = [](const std::string& n) { return find_test(n) != nullptr; };
    auto holder = std::make_shared<StmtListHolder>();
    try {
        holder->body = parse(tokenize(source), hooks);
    } catch (const Failure& f) {
        throw located(name_, f);
    } catch (const std::logic_error& e) {
        throw unlocated(name_, e);
    }
    body_ = std::move(holder);
}

std::string Template::render(const std::vector<std::pair<std::string, Value>>& variables) const {
    Interpreter interpreter(limits_);
    auto globals = std::make_shared<Scope>();
    for (auto& [n, v] : builtin_globals()) globals->vars[n] = v;
    auto root = std::make_shared<Scope>();
    root->parent = globals;
    for (const auto& [n, v] : variables) root->vars[n] = v;
    std::string out;
    try {
        interpreter.exec(body_->body, root, out);
    } catch (const Failure& f) {
        throw located(name_, f);
    } catch (const std::logic_error& e) {
        throw unlocated(name_, e);
    }
    return out;
}

}  // namespace moe::jinja
