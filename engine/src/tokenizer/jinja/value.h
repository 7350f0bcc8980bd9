#pragma once
// The values a Jinja template computes with. They follow Python's object model, because chat
// templates are written against Jinja-on-Python: lists and dicts are shared references (a
// namespace attribute set in a loop is seen after it), dicts keep insertion order, ints and
// floats are distinct, and printing follows Python's str()/repr().
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace moe::jinja {

// A runtime failure inside the interpreter; the evaluator attaches the template line.
class Failure : public std::runtime_error {
  public:
    explicit Failure(const std::string& message, int line = 0)
        : std::runtime_error(message), line(line) {}
    int line;
};

class Value;
struct Dict;
struct CallArgs;
using ValueList = std::vector<Value>;
using NativeFunction = std::function<Value(CallArgs&)>;

class Value {
  public:
    enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, String, List, Dict, Function };

    Value() = default;  // undefined
    Value(bool b) : kind_(Kind::Bool), int_(b ? 1 : 0) {}
    Value(int i) : kind_(Kind::Int), int_(i) {}
    Value(int64_t i) : kind_(Kind::Int), int_(i) {}
    Value(double f) : kind_(Kind::Float), float_(f) {}
    Value(std::string s) : kind_(Kind::String), str_(std::move(s)) {}
    Value(const char* s) : kind_(Kind::String), str_(s) {}

    // `hint` is the error raised when the undefined value is used in a way that needs a value
    // (called, added, ...), e.g. "'foo' is undefined".
    static Value undefined(std::string hint = {});
    static Value none();
    static Value list(ValueList items = {}, bool tuple = false);
    static Value dict();
    static Value namespace_object();
    static Value function(std::string name, NativeFunction fn);
    static Value from_json(const nlohmann::ordered_json& j);

    Kind kind() const { return kind_; }
    bool is_undefined() const { return kind_ == Kind::Undefined; }
    bool is_none() const { return kind_ == Kind::None; }
    bool is_bool() const { return kind_ == Kind::Bool; }
    bool is_int() const { return kind_ == Kind::Int; }
    bool is_float() const { return kind_ == Kind::Float; }
    bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float || is_bool(); }
    bool is_string() const { return kind_ == Kind::String; }
    bool is_list() const { return kind_ == Kind::List; }
    bool is_tuple() const { return kind_ == Kind::List && tuple_; }
    bool is_dict() const { return kind_ == Kind::Dict; }
    bool is_function() const { return kind_ == Kind::Function; }
    bool is_namespace() const;

    bool truthy() const;
    int64_t as_int() const { return int_; }  // Int and Bool
    double as_double() const { return kind_ == Kind::Float ? float_ : double(int_); }
    const std::string& as_string() const { return str_; }
    ValueList& items() const { return *list_; }
    Dict& dict_ref() const { return *dict_; }
    const std::string& undefined_hint() const { return str_; }
    Value call(CallArgs& args) const;
    const std::string& function_name() const { return str_; }

    // Throws the undefined value's error (only meaningful for undefined values).
    [[noreturn]] void fail_undefined() const;

    std::string str() const;        // Python str()
    std::string repr() const;       // Python repr()
    std::string type_name() const;  // Python's type name, for error messages

    // Python ==, and < with its TypeError for unordered types.
    static bool equals(const Value& a, const Value& b);
    static bool less(const Value& a, const Value& b);

    // json.dumps(x, ensure_ascii=..., indent=..., separators=..., sort_keys=...).
    struct JsonStyle {
        bool ensure_ascii = false;
        std::string indent;  // per level; used only when `pretty`
        bool pretty = false;
        std::string item_separator = ", ";
        std::string key_separator = ": ";
        bool sort_keys = false;
    };
    std::string to_json(const JsonStyle& style) const;

  private:
    Kind kind_ = Kind::Undefined;
    bool tuple_ = false;
    int64_t int_ = 0;
    double float_ = 0;
    std::string str_;  // string value, undefined hint, or function name
    std::shared_ptr<ValueList> list_;
    std::shared_ptr<Dict> dict_;
    std::shared_ptr<NativeFunction> fn_;
};

// An insertion-ordered dict (Python 3.7+ order). Lookups are linear: template dicts are small.
struct Dict {
    std::vector<std::pair<Value, Value>> entries;
    bool is_namespace = false;

    const Value* find(const Value& key) const;
    const Value* find(const std::string& key) const;
    void set(const Value& key, Value value);
};

// Positional and keyword arguments of a call.
struct CallArgs {
    ValueList positional;
    std::vector<std::pair<std::string, Value>> named;
    int line = 0;

    // Python-style binding: argument `index` by position or by `name`; `fallback` when absent.
    Value get(size_t index, const char* name, Value fallback = Value()) const;
    bool has(size_t index, const char* name) const;
};

// Python's float repr (shortest round-trip digits, "1e-05", "1.0").
std::string format_float(double f);

// UTF-8 helpers: Python strings index code points, not bytes.
std::vector<std::string> utf8_chars(const std::string& s);
size_t utf8_length(const std::string& s);

}  // namespace moe::jinja
