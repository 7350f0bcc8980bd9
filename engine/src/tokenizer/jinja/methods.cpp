// Attribute and item access, and the methods of str, dict and list that templates call.
#include <algorithm>
#include <cstdio>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/strings.h"

namespace moe::jinja {

namespace {

std::optional<std::string> opt_string(const Value& v, const char* what) {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!v.is_string()) throw Failure(std::string(what) + " arg must be None or str");
    return v.as_string();
}

const std::string& need_string(const Value& v, const char* what) {
    if (!v.is_string())
        throw Failure(std::string(what) + " expects a string, got " + v.type_name());
    return v.as_string();
}

Value string_list(const std::vector<std::string>& parts) {
    ValueList items;
    items.reserve(parts.size());
    for (const auto& p : parts) items.emplace_back(p);
    return Value::list(std::move(items));
}

// Python find/rfind/index in code points.
int64_t char_index(const std::string& s, size_t byte_pos) {
    return int64_t(utf8_length(s.substr(0, byte_pos)));
}

bool affix_match(const std::string& s, const Value& affix, bool prefix) {
    auto one = [&](const std::string& a) {
        if (a.size() > s.size()) return false;
        return prefix ? s.compare(0, a.size(), a) == 0
                      : s.compare(s.size() - a.size(), a.size(), a) == 0;
    };
    if (affix.is_list()) {
        for (const auto& a : affix.items())
            if (one(need_string(a, prefix ? "startswith" : "endswith"))) return true;
        return false;
    }
    return one(need_string(affix, prefix ? "startswith" : "endswith"));
}

Value string_method(const std::string& s, const std::string& name) {
    auto bind = [&](auto fn) {
        return Value::function("str." + name, [s, fn](CallArgs& a) -> Value { return fn(s, a); });
    };
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
        bool left = name != "rstrip", right = name != "lstrip";
        return bind([left, right](const std::string& str, CallArgs& a) {
            return Value(py_strip(str, opt_string(a.get(0, "chars"), "strip"), left, right));
        });
    }
    if (name == "split" || name == "rsplit") {
        bool from_right = name == "rsplit";
        return bind([from_right](const std::string& str, CallArgs& a) {
            Value maxsplit = a.get(1, "maxsplit", Value(-1));
            return string_list(
                py_split(str, opt_string(a.get(0, "sep"), "split"), maxsplit.as_int(), from_right));
        });
    }
    if (name == "splitlines")
        return bind([](const std::string& str, CallArgs& a) {
            return string_list(py_splitlines(str, a.get(0, "keepends", Value(false)).truthy()));
        });
    if (name == "startswith" || name == "endswith") {
        bool prefix = name == "startswith";
        return bind([prefix](const std::string& str, CallArgs& a) {
            return Value(affix_match(str, a.get(0, "prefix"), prefix));
        });
    }
    if (name == "upper")
        return bind([](const std::string& str, CallArgs&) { return Value(ascii_upper(str)); });
    if (name == "lower")
        return bind([](const std::string& str, CallArgs&) { return Value(ascii_lower(str)); });
    if (name == "title")
        return bind([](const std::string& str, CallArgs&) { return Value(py_title(str)); });
    if (name == "capitalize")
        return bind([](const std::string& str, CallArgs&) { return Value(py_capitalize(str)); });
    if (name == "replace")
        return bind([](const std::string& str, CallArgs& a) {
            return Value(py_replace(str, need_string(a.get(0, "old"), "replace"),
                                    need_string(a.get(1, "new"), "replace"),
                                    a.get(2, "count", Value(-1)).as_int()));
        });
    if (name == "format")
        return bind([](const std::string& str, CallArgs& a) { return Value(py_format(str, a)); });
    if (name == "join")
        return bind([](const std::string& str, CallArgs& a) {
            std::string out;
            bool first = true;
            for (const auto& item : iterate(a.get(0, "iterable"))) {
                if (!first) out += str;
                first = false;
                out += need_string(item, "str.join");
            }
            return Value(out);
        });
    if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
        bool right = name[0] == 'r';
        bool raise = name.find("index") != std::string::npos;
        return bind([right, raise](const std::string& str, CallArgs& a) {
            const std::string& sub = need_string(a.get(0, "sub"), "find");
            size_t p = right ? str.rfind(sub) : str.find(sub);
            if (p == std::string::npos) {
                if (raise) throw Failure("substring not found");
                return Value(-1);
            }
            return Value(char_index(str, p));
        });
    }
    if (name == "count")
        return bind([](const std::string& str, CallArgs& a) {
            return Value(py_count(str, need_string(a.get(0, "sub"), "count")));
        });
    if (name == "removeprefix" || name == "removesuffix") {
        bool prefix = name == "removeprefix";
        return bind([prefix](const std::string& str, CallArgs& a) {
            const std::string& x = need_string(a.get(0, "affix"), "removeprefix");
            if (!affix_match(str, Value(x), prefix)) return Value(str);
            return Value(prefix ? str.substr(x.size()) : str.substr(0, str.size() - x.size()));
        });
    }
    if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" ||
        name == "islower" || name == "isupper") {
        std::string kind = name;
        return bind([kind](const std::string& str, CallArgs&) {
            if (str.empty()) return Value(false);
            bool any_cased = false;
            for (unsigned char c : str) {
                bool ok = true;
                if (kind == "isdigit")
                    ok = std::isdigit(c);
                else if (kind == "isalpha")
                    ok = std::isalpha(c);
                else if (kind == "isalnum")
                    ok = std::isalnum(c);
                else if (kind == "isspace")
                    ok = std::isspace(c);
                else if (kind == "islower")
                    ok = !std::isupper(c), any_cased |= bool(std::islower(c));
                else
                    ok = !std::islower(c), any_cased |= bool(std::isupper(c));
                if (!ok) return Value(false);
            }
            return Value(kind == "islower" || kind == "isupper" ? any_cased : true);
        });
    }
    return Value::undefined("'str object' has no attribute '" + name + "'");
}

Value dict_method(const Value& d, const std::string& name) {
    if (name == "get")
        return Value::function("dict.get", [d](CallArgs& a) {
            const Value* v = d.dict_ref().find(a.get(0, "key"));
            return v ? *v : a.get(1, "default", Value::none());
        });
    if (name == "items" || name == "keys" || name == "values") {
        int which = name == "items" ? 0 : name == "keys" ? 1 : 2;
        return Value::function("dict." + name, [d, which](CallArgs&) {
            ValueList out;
            for (const auto& [k, v] : d.dict_ref().entries) {
                if (which == 0)
                    out.push_back(Value::list({k, v}, true));
                else
                    out.push_back(which == 1 ? k : v);
            }
            return Value::list(std::move(out));
        });
    }
    if (name == "copy")
        return Value::function("dict.copy", [d](CallArgs&) {
            Value c = Value::dict();
            c.dict_ref().entries = d.dict_ref().entries;
            return c;
        });
    if (name == "pop" || name == "popitem" || name == "setdefault" || name == "update" ||
        name == "clear")
        return Value::undefined("access to attribute '" + name + "' of 'dict' object is unsafe.");
    return Value();
}

Value list_method(const Value& l, const std::string& name) {
    if (name == "index")
        return Value::function("list.index", [l](CallArgs& a) {
            Value x = a.get(0, "value");
            const ValueList& items = l.items();
            for (size_t i = 0; i < items.size(); ++i)
                if (Value::equals(items[i], x)) return Value(int64_t(i));
            throw Failure(x.repr() + " is not in list");
        });
    if (name == "count")
        return Value::function("list.count", [l](CallArgs& a) {
            Value x = a.get(0, "value");
            int64_t n = 0;
            for (const auto& item : l.items()) n += Value::equals(item, x);
            return Value(n);
        });
    static const char* const mutators[] = {"append", "pop",     "extend", "insert",
                                           "remove", "reverse", "sort",   "clear"};
    for (const char* m : mutators)
        if (name == m)
            return Value::undefined("access to attribute '" + name + "' of '" + l.type_name() +
                                    "' object is unsafe.");
    return Value::undefined("'" + l.type_name() + " object' has no attribute '" + name + "'");
}

int64_t normalize_index(int64_t i, int64_t n) {
    return i < 0 ? i + n : i;
}

}  // namespace

Value get_attr(const Value& obj, const std::string& name) {
    switch (obj.kind()) {
        case Value::Kind::Undefined:
            obj.fail_undefined();
        case Value::Kind::Dict: {
            if (obj.is_namespace()) {
                const Value* v = obj.dict_ref().find(name);
                return v ? *v : Value::undefined("'Namespace' has no attribute '" + name + "'");
            }
            Value m = dict_method(obj, name);
            if (!m.is_undefined() || !m.undefined_hint().empty()) return m;
            const Value* v = obj.dict_ref().find(name);
            return v ? *v : Value::undefined("'dict object' has no attribute '" + name + "'");
        }
        case Value::Kind::String:
            return string_method(obj.as_string(), name);
        case Value::Kind::List:
            return list_method(obj, name);
        default:
            return Value::undefined("'" + obj.type_name() + " object' has no attribute '" + name +
                                    "'");
    }
}

Value get_item(const Value& obj, const Value& key) {
    switch (obj.kind()) {
        case Value::Kind::Undefined:
            obj.fail_undefined();
        case Value::Kind::Dict: {
            if (!obj.is_namespace())
                if (const Value* v = obj.dict_ref().find(key)) return *v;
            if (key.is_string()) return get_attr(obj, key.as_string());
            return Value::undefined("'dict object' has no attribute " + key.repr());
        }
        case Value::Kind::List: {
            if (key.is_int() || key.is_bool()) {
                int64_t n = int64_t(obj.items().size());
                int64_t i = normalize_index(key.as_int(), n);
                if (i >= 0 && i < n) return obj.items()[size_t(i)];
                return Value::undefined(obj.type_name() + " object has no element " + key.repr());
            }
            if (key.is_string()) return get_attr(obj, key.as_string());
            throw Failure("list indices must be integers or slices, not " + key.type_name());
        }
        case Value::Kind::String: {
            if (key.is_int() || key.is_bool()) {
                auto cs = utf8_chars(obj.as_string());
                int64_t n = int64_t(cs.size());
                int64_t i = normalize_index(key.as_int(), n);
                if (i >= 0 && i < n) return Value(cs[size_t(i)]);
                return Value::undefined("str object has no element " + key.repr());
            }
            if (key.is_string()) return get_attr(obj, key.as_string());
            throw Failure("string indices must be integers, not " + key.type_name());
        }
        default:
            return Value::undefined("'" + obj.type_name() + " object' has no attribute " +
                                    key.repr());
    }
}

Value slice_value(const Value& obj, std::optional<int64_t> start, std::optional<int64_t> stop,
                  std::optional<int64_t> step_opt) {
    if (obj.is_undefined()) obj.fail_undefined();
    int64_t step = step_opt.value_or(1);
    if (step == 0) throw Failure("slice step cannot be zero");
    bool is_str = obj.is_string();
    if (!is_str && !obj.is_list())
        throw Failure("'" + obj.type_name() + "' object is not subscriptable");
    std::vector<std::string> chars;
    if (is_str) chars = utf8_chars(obj.as_string());
    int64_t n = is_str ? int64_t(chars.size()) : int64_t(obj.items().size());
    // Python's slice.indices().
    auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
        if (!v) return dflt;
        int64_t i = *v < 0 ? *v + n : *v;
        if (step > 0) return std::clamp<int64_t>(i, 0, n);
        return std::clamp<int64_t>(i, -1, n - 1);
    };
    int64_t b = clamp(start, step > 0 ? 0 : n - 1);
    int64_t e = clamp(stop, step > 0 ? n : -1);
    std::string s;
    ValueList items;
    for (int64_t i = b; step > 0 ? i < e : i > e; i += step) {
        if (is_str)
            s += chars[size_t(i)];
        else
            items.push_back(obj.items()[size_t(i)]);
    }
    if (is_str) return Value(s);
    return Value::list(std::move(items), obj.is_tuple());
}

ValueList iterate(const Value& v) {
    switch (v.kind()) {
        case Value::Kind::Undefined:
            return {};
        case Value::Kind::List:
            return v.items();
        case Value::Kind::Dict: {
            ValueList keys;
            for (const auto& e : v.dict_ref().entries) keys.push_back(e.first);
            return keys;
        }
        case Value::Kind::String: {
            ValueList out;
            for (auto& c : utf8_chars(v.as_string())) out.emplace_back(std::move(c));
            return out;
        }
        default:
            throw Failure("'" + v.type_name() + "' object is not iterable");
    }
}

bool contains(const Value& container, const Value& item) {
    switch (container.kind()) {
        case Value::Kind::Undefined:
            return false;
        case Value::Kind::String:
            if (!item.is_string())
                throw Failure("'in <string>' requires string as left operand, not " +
                              item.type_name());
            return container.as_string().find(item.as_string()) != std::string::npos;
        case Value::Kind::List:
            for (const auto& x : container.items())
                if (Value::equals(x, item)) return true;
            return false;
        case Value::Kind::Dict:
            return container.dict_ref().find(item) != nullptr;
        default:
            throw Failure("argument of type '" + container.type_name() + "' is not iterable");
    }
}

int64_t length_of(const Value& v) {
    switch (v.kind()) {
        case Value::Kind::Undefined:
            return 0;
        case Value::Kind::String:
            return int64_t(utf8_length(v.as_string()));
        case Value::Kind::List:
            return int64_t(v.items().size());
        case Value::Kind::Dict:
            return int64_t(v.dict_ref().entries.size());
        default:
            throw Failure("object of type '" + v.type_name() + "' has no len()");
    }
}

std::string percent_format(const std::string& fmt, const Value& args) {
    ValueList list = args.is_tuple() ? args.items() : ValueList{args};
    size_t next = 0;
    std::string out;
    for (size_t i = 0; i < fmt.size(); ++i) {
        if (fmt[i] != '%') {
            out += fmt[i];
            continue;
        }
        size_t j = i + 1;
        std::string flags;
        while (j < fmt.size() && std::string("-+ #0123456789.").find(fmt[j]) != std::string::npos)
            flags += fmt[j++];
        if (j >= fmt.size()) throw Failure("incomplete format");
        char conv = fmt[j];
        i = j;
        if (conv == '%') {
            out += '%';
            continue;
        }
        if (next >= list.size()) throw Failure("not enough arguments for format string");
        const Value& v = list[next++];
        char buf[128];
        std::string spec = "%" + flags;
        switch (conv) {
            case 's':
                out += v.str();
                break;
            case 'r':
                out += v.repr();
                break;
            case 'd':
            case 'i':
                std::snprintf(
                    buf, sizeof(buf), (spec + "lld").c_str(),
                    static_cast<long long>(v.is_float() ? int64_t(v.as_double()) : v.as_int()));
                out += buf;
                break;
            case 'f':
            case 'e':
            case 'g':
            case 'x':
                if (conv == 'x')
                    std::snprintf(buf, sizeof(buf), (spec + "llx").c_str(),
                                  static_cast<long long>(v.as_int()));
                else
                    std::snprintf(buf, sizeof(buf), (spec + conv).c_str(), v.as_double());
                out += buf;
                break;
            default:
                throw Failure(std::string("unsupported format character '") + conv + "'");
        }
    }
    if (next < list.size()) throw Failure("not all arguments converted during string formatting");
    return out;
}

}  // namespace moe::jinja
