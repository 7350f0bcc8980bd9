#include "tokenizer/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace moe::jinja {

Value Value::undefined(std::string hint) {
    Value v;
    v.str_ = std::move(hint);
    return v;
}

Value Value::none() {
    Value v;
    v.kind_ = Kind::None;
    return v;
}

Value Value::list(ValueList items, bool tuple) {
    Value v;
    v.kind_ = Kind::List;
    v.tuple_ = tuple;
    v.list_ = std::make_shared<ValueList>(std::move(items));
    return v;
}

Value Value::dict() {
    Value v;
    v.kind_ = Kind::Dict;
    v.dict_ = std::make_shared<Dict>();
    return v;
}

Value Value::namespace_object() {
    Value v = dict();
    v.dict_->is_namespace = true;
    return v;
}

Value Value::function(std::string name, NativeFunction fn) {
    Value v;
    v.kind_ = Kind::Function;
    v.str_ = std::move(name);
    v.fn_ = std::make_shared<NativeFunction>(std::move(fn));
    return v;
}

Value Value::from_json(const nlohmann::ordered_json& j) {
    switch (j.type()) {
        case nlohmann::ordered_json::value_t::null:
            return none();
        case nlohmann::ordered_json::value_t::boolean:
            return Value(j.get<bool>());
        case nlohmann::ordered_json::value_t::number_integer:
            return Value(j.get<int64_t>());
        case nlohmann::ordered_json::value_t::number_unsigned:
            return Value(static_cast<int64_t>(j.get<uint64_t>()));
        case nlohmann::ordered_json::value_t::number_float:
            return Value(j.get<double>());
        case nlohmann::ordered_json::value_t::string:
            return Value(j.get<std::string>());
        case nlohmann::ordered_json::value_t::array: {
            ValueList items;
            items.reserve(j.size());
            for (const auto& e : j) items.push_back(from_json(e));
            return list(std::move(items));
        }
        case nlohmann::ordered_json::value_t::object: {
            Value d = dict();
            for (auto it = j.begin(); it != j.end(); ++it)
                d.dict_->entries.emplace_back(Value(it.key()), from_json(it.value()));
            return d;
        }
        default:
            throw Failure("unsupported JSON value (binary) in the template input");
    }
}

bool Value::is_namespace() const {
    return kind_ == Kind::Dict && dict_->is_namespace;
}

bool Value::truthy() const {
    switch (kind_) {
        case Kind::Undefined:
        case Kind::None:
            return false;
        case Kind::Bool:
        case Kind::Int:
            return int_ != 0;
        case Kind::Float:
            return float_ != 0.0;
        case Kind::String:
            return !str_.empty();
        case Kind::List:
            return !list_->empty();
        case Kind::Dict:
            return is_namespace() || !dict_->entries.empty();
        case Kind::Function:
            return true;
    }
    return false;
}

Value Value::call(CallArgs& args) const {
    if (kind_ == Kind::Undefined) fail_undefined();
    if (kind_ != Kind::Function) throw Failure("'" + type_name() + "' object is not callable");
    return (*fn_)(args);
}

void Value::fail_undefined() const {
    throw Failure(str_.empty() ? std::string("value is undefined") : str_);
}

std::string format_float(double f) {
    if (std::isnan(f)) return "nan";
    if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
    // Shortest round-trip digits in scientific form, then laid out as Python's repr does:
    // positional for exponents in [-4, 16), else d.ddde±XX.
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof(buf), f, std::chars_format::scientific);
    std::string sci(buf, res.ptr);
    bool negative = sci[0] == '-';
    if (negative) sci.erase(0, 1);
    size_t epos = sci.find('e');
    std::string mantissa = sci.substr(0, epos);
    int exp = std::stoi(sci.substr(epos + 1));
    std::string digits;
    for (char c : mantissa)
        if (c != '.') digits += c;
    std::string out;
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            out = "0." + std::string(size_t(-exp - 1), '0') + digits;
        } else if (size_t(exp) + 1 >= digits.size()) {
            out = digits + std::string(size_t(exp) + 1 - digits.size(), '0') + ".0";
        } else {
            out = digits.substr(0, size_t(exp) + 1) + "." + digits.substr(size_t(exp) + 1);
        }
    } else {
        out = digits.substr(0, 1);
        if (digits.size() > 1) out += "." + digits.substr(1);
        char e[16];
        std::snprintf(e, sizeof(e), "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
        out += e;
    }
    return negative ? "-" + out : out;
}

namespace {

std::string repr_string(const std::string& s) {
    // Python prefers single quotes, and switches to double quotes when only ' occurs.
    bool has_single = s.find('\'') != std::string::npos;
    bool has_double = s.find('"') != std::string::npos;
    char quote = (has_single && !has_double) ? '"' : '\'';
    std::string out(1, quote);
    for (unsigned char c : s) {
        if (c == '\\')
            out += "\\\\";
        else if (c == static_cast<unsigned char>(quote))
            out += std::string("\\") + quote;
        else if (c == '\n')
            out += "\\n";
        else if (c == '\r')
            out += "\\r";
        else if (c == '\t')
            out += "\\t";
        else if (c < 0x20 || c == 0x7f) {
            char b[8];
            std::snprintf(b, sizeof(b), "\\x%02x", c);
            out += b;
        } else
            out += char(c);
    }
    out += quote;
    return out;
}

void append_json_string(std::string& out, const std::string& s, bool ensure_ascii) {
    out += '"';
    for (size_t i = 0; i < s.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        switch (c) {
            case '"':
                out += "\\\"";
                continue;
            case '\\':
                out += "\\\\";
                continue;
            case '\n':
                out += "\\n";
                continue;
            case '\r':
                out += "\\r";
                continue;
            case '\t':
                out += "\\t";
                continue;
            case '\b':
                out += "\\b";
                continue;
            case '\f':
                out += "\\f";
                continue;
            default:
                break;
        }
        char b[16];
        if (c < 0x20) {
            std::snprintf(b, sizeof(b), "\\u%04x", c);
            out += b;
        } else if (c >= 0x80 && ensure_ascii) {
            // Decode one UTF-8 sequence and escape it as \uXXXX (surrogate pairs above BMP).
            uint32_t cp = 0;
            int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
            cp = c & (0x3f >> extra);
            for (int k = 0; k < extra && i + 1 < s.size(); ++k)
                cp = (cp << 6) | (static_cast<unsigned char>(s[++i]) & 0x3f);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                std::snprintf(b, sizeof(b), "\\u%04x\\u%04x", 0xd800 + (cp >> 10),
                              0xdc00 + (cp & 0x3ff));
            } else {
                std::snprintf(b, sizeof(b), "\\u%04x", cp);
            }
            out += b;
        } else {
            out += char(c);
        }
    }
    out += '"';
}

void append_json(std::string& out, const Value& v, const Value::JsonStyle& st, int depth) {
    auto newline = [&](int d) {
        if (!st.pretty) return;
        out += '\n';
        for (int k = 0; k < d; ++k) out += st.indent;
    };
    const std::string& item_sep = st.item_separator;
    switch (v.kind()) {
        case Value::Kind::None:
            out += "null";
            return;
        case Value::Kind::Bool:
            out += v.as_int() ? "true" : "false";
            return;
        case Value::Kind::Int:
            out += std::to_string(v.as_int());
            return;
        case Value::Kind::Float: {
            double f = v.as_double();
            if (std::isnan(f))
                out += "NaN";
            else if (std::isinf(f))
                out += f > 0 ? "Infinity" : "-Infinity";
            else
                out += format_float(f);
            return;
        }
        case Value::Kind::String:
            append_json_string(out, v.as_string(), st.ensure_ascii);
            return;
        case Value::Kind::List: {
            const ValueList& items = v.items();
            if (items.empty()) {
                out += "[]";
                return;
            }
            out += '[';
            for (size_t i = 0; i < items.size(); ++i) {
                if (i) out += item_sep;
                newline(depth + 1);
                append_json(out, items[i], st, depth + 1);
            }
            newline(depth);
            out += ']';
            return;
        }
        case Value::Kind::Dict: {
            std::vector<const std::pair<Value, Value>*> entries;
            for (const auto& e : v.dict_ref().entries) entries.push_back(&e);
            if (entries.empty()) {
                out += "{}";
                return;
            }
            if (st.sort_keys)
                std::stable_sort(entries.begin(), entries.end(),
                                 [](auto* a, auto* b) { return Value::less(a->first, b->first); });
            out += '{';
            bool first = true;
            for (const auto* e : entries) {
                if (!first) out += item_sep;
                first = false;
                newline(depth + 1);
                const Value& k = e->first;
                if (k.is_string())
                    append_json_string(out, k.as_string(), st.ensure_ascii);
                else if (k.is_none())
                    out += "\"null\"";
                else if (k.is_bool())
                    out += k.as_int() ? "\"true\"" : "\"false\"";
                else if (k.is_int() || k.is_float())
                    out += "\"" + k.str() + "\"";
                else
                    throw Failure("keys must be str, int, float, bool or None, not " +
                                  k.type_name());
                out += st.key_separator;
                append_json(out, e->second, st, depth + 1);
            }
            newline(depth);
            out += '}';
            return;
        }
        case Value::Kind::Undefined:
        case Value::Kind::Function:
            throw Failure("Object of type " + v.type_name() + " is not JSON serializable");
    }
}

}  // namespace

std::string Value::to_json(const JsonStyle& style) const {
    std::string out;
    append_json(out, *this, style, 0);
    return out;
}

std::string Value::str() const {
    switch (kind_) {
        case Kind::Undefined:
            return "";
        case Kind::String:
            return str_;
        default:
            return repr();
    }
}

std::string Value::repr() const {
    switch (kind_) {
        case Kind::Undefined:
            return "";
        case Kind::None:
            return "None";
        case Kind::Bool:
            return int_ ? "True" : "False";
        case Kind::Int:
            return std::to_string(int_);
        case Kind::Float:
            return format_float(float_);
        case Kind::String:
            return repr_string(str_);
        case Kind::List: {
            std::string out(1, tuple_ ? '(' : '[');
            for (size_t i = 0; i < list_->size(); ++i) {
                if (i) out += ", ";
                out += (*list_)[i].repr();
            }
            if (tuple_ && list_->size() == 1) out += ',';
            out += tuple_ ? ')' : ']';
            return out;
        }
        case Kind::Dict: {
            if (dict_->is_namespace) {
                std::string out = "<Namespace {";
                bool first = true;
                for (const auto& [k, v] : dict_->entries) {
                    if (!first) out += ", ";
                    first = false;
                    out += k.repr() + ": " + v.repr();
                }
                return out + "}>";
            }
            std::string out = "{";
            bool first = true;
            for (const auto& [k, v] : dict_->entries) {
                if (!first) out += ", ";
                first = false;
                out += k.repr() + ": " + v.repr();
            }
            return out + "}";
        }
        case Kind::Function:
            return "<function " + str_ + ">";
    }
    return "";
}

std::string Value::type_name() const {
    switch (kind_) {
        case Kind::Undefined:
            return "Undefined";
        case Kind::None:
            return "NoneType";
        case Kind::Bool:
            return "bool";
        case Kind::Int:
            return "int";
        case Kind::Float:
            return "float";
        case Kind::String:
            return "str";
        case Kind::List:
            return tuple_ ? "tuple" : "list";
        case Kind::Dict:
            return dict_->is_namespace ? "Namespace" : "dict";
        case Kind::Function:
            return "function";
    }
    return "object";
}

bool Value::equals(const Value& a, const Value& b) {
    if (a.is_number() && b.is_number()) {
        if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
        return a.int_ == b.int_;
    }
    if (a.kind_ != b.kind_) return false;
    switch (a.kind_) {
        case Kind::Undefined:
        case Kind::None:
            return true;
        case Kind::String:
            return a.str_ == b.str_;
        case Kind::List: {
            if (a.list_ == b.list_) return true;
            if (a.list_->size() != b.list_->size() || a.tuple_ != b.tuple_) return false;
            for (size_t i = 0; i < a.list_->size(); ++i)
                if (!equals((*a.list_)[i], (*b.list_)[i])) return false;
            return true;
        }
        case Kind::Dict: {
            if (a.dict_ == b.dict_) return true;
            if (a.dict_->is_namespace || b.dict_->is_namespace) return false;
            if (a.dict_->entries.size() != b.dict_->entries.size()) return false;
            for (const auto& [k, v] : a.dict_->entries) {
                const Value* other = b.dict_->find(k);
                if (!other || !equals(v, *other)) return false;
            }
            return true;
        }
        case Kind::Function:
            return a.fn_ == b.fn_;
        default:
            return false;
    }
}

bool Value::less(const Value& a, const Value& b) {
    if (a.is_number() && b.is_number()) {
        if (a.is_float() || b.is_float()) return a.as_double() < b.as_double();
        return a.int_ < b.int_;
    }
    if (a.is_string() && b.is_string()) return a.str_ < b.str_;
    if (a.is_list() && b.is_list()) {
        const ValueList& x = *a.list_;
        const ValueList& y = *b.list_;
        for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
            if (!equals(x[i], y[i])) return less(x[i], y[i]);
        }
        return x.size() < y.size();
    }
    throw Failure("'<' not supported between instances of '" + a.type_name() + "' and '" +
                  b.type_name() + "'");
}

const Value* Dict::find(const Value& key) const {
    for (const auto& e : entries)
        if (Value::equals(e.first, key)) return &e.second;
    return nullptr;
}

const Value* Dict::find(const std::string& key) const {
    for (const auto& e : entries)
        if (e.first.is_string() && e.first.as_string() == key) return &e.second;
    return nullptr;
}

void Dict::set(const Value& key, Value value) {
    for (auto& e : entries)
        if (Value::equals(e.first, key)) {
            e.second = std::move(value);
            return;
        }
    entries.emplace_back(key, std::move(value));
}

Value CallArgs::get(size_t index, const char* name, Value fallback) const {
    if (index < positional.size()) return positional[index];
    for (const auto& [n, v] : named)
        if (n == name) return v;
    return fallback;
}

bool CallArgs::has(size_t index, const char* name) const {
    if (index < positional.size()) return true;
    for (const auto& [n, v] : named)
        if (n == name) return true;
    return false;
}

std::vector<std::string> utf8_chars(const std::string& s) {
    std::vector<std::string> out;
    for (size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        n = std::min(n, s.size() - i);
        out.push_back(s.substr(i, n));
        i += n;
    }
    return out;
}

size_t utf8_length(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s)
        if ((c & 0xc0) != 0x80) ++n;
    return n;
}

}  // namespace moe::jinja
