// Jinja's built-in filters, tests and globals (plus transformers' tojson override).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/strings.h"

namespace moe::jinja {

namespace {

constexpr int64_t kMaxRange = 100000;  // the sandbox's MAX_RANGE

CallArgs shift_args(const CallArgs& a, size_t n) {
    CallArgs out;
    out.positional.assign(a.positional.begin() + long(std::min(n, a.positional.size())),
                          a.positional.end());
    out.named = a.named;
    return out;
}

// attribute="a.b" or an integer index, as Jinja's make_attrgetter.
Value attr_path(const Value& v, const Value& attribute) {
    if (attribute.is_int()) return get_item(v, attribute);
    Value cur = v;
    for (const auto& part : py_split(attribute.str(), std::string("."), -1)) {
        bool digits = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
        cur = get_item(cur, digits ? Value(int64_t(std::stoll(part))) : Value(part));
    }
    return cur;
}

Value sort_key(const Value& v, bool case_sensitive) {
    if (!case_sensitive && v.is_string()) return Value(ascii_lower(v.as_string()));
    return v;
}

Value f_tojson(const Value& v, CallArgs& a) {
    Value::JsonStyle st;
    st.ensure_ascii = a.get(0, "ensure_ascii", Value(false)).truthy();
    Value indent = a.get(1, "indent", Value::none());
    if (indent.is_int()) {
        st.pretty = true;
        st.indent = std::string(size_t(std::max<int64_t>(0, indent.as_int())), ' ');
    } else if (indent.is_string()) {
        st.pretty = true;
        st.indent = indent.as_string();
    }
    Value seps = a.get(2, "separators", Value::none());
    if (seps.is_list() && seps.items().size() == 2) {
        st.item_separator = seps.items()[0].str();
        st.key_separator = seps.items()[1].str();
    } else if (st.pretty) {
        st.item_separator = ",";  // json.dumps' default once indent is set
    }
    st.sort_keys = a.get(3, "sort_keys", Value(false)).truthy();
    return Value(v.to_json(st));
}

Value f_trim(const Value& v, CallArgs& a) {
    Value chars = a.get(0, "chars", Value::none());
    return Value(py_strip(
        v.str(), chars.is_string() ? std::optional(chars.as_string()) : std::nullopt, true, true));
}

Value f_length(const Value& v, CallArgs&) {
    return Value(length_of(v));
}
Value f_string(const Value& v, CallArgs&) {
    return Value(v.str());
}

Value f_int(const Value& v, CallArgs& a) {
    Value dflt = a.get(0, "default", Value(0));
    if (v.is_int() || v.is_bool()) return Value(v.as_int());
    if (v.is_float()) return Value(int64_t(v.as_double()));
    if (v.is_string()) {
        std::string s = py_strip(v.as_string(), std::nullopt, true, true);
        try {
            size_t used = 0;
            int64_t base = a.get(1, "base", Value(10)).as_int();
            long long i = std::stoll(s, &used, int(base));
            if (used == s.size()) return Value(int64_t(i));
            double d = std::stod(s, &used);
            if (used == s.size()) return Value(int64_t(d));
        } catch (const std::exception&) {
        }
    }
    return dflt;
}

Value f_float(const Value& v, CallArgs& a) {
    Value dflt = a.get(0, "default", Value(0.0));
    if (v.is_number()) return Value(v.as_double());
    if (v.is_string()) {
        try {
            size_t used = 0;
            std::string s = py_strip(v.as_string(), std::nullopt, true, true);
            double d = std::stod(s, &used);
            if (used == s.size()) return Value(d);
        } catch (const std::exception&) {
        }
    }
    return dflt;
}

Value f_lower(const Value& v, CallArgs&) {
    return Value(ascii_lower(v.str()));
}
Value f_upper(const Value& v, CallArgs&) {
    return Value(ascii_upper(v.str()));
}
Value f_capitalize(const Value& v, CallArgs&) {
    return Value(py_capitalize(v.str()));
}

Value f_title(const Value& v, CallArgs&) {
    // Jinja's title: words start after whitespace or -({[<, unlike str.title().
    std::string s = v.str(), out;
    bool start = true;
    for (char c : s) {
        unsigned char u = static_cast<unsigned char>(c);
        out += char(start ? std::toupper(u) : std::tolower(u));
        start = std::isspace(u) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    }
    return Value(out);
}

Value f_replace(const Value& v, CallArgs& a) {
    return Value(
        py_replace(v.str(), a.get(0, "old").str(), a.get(1, "new").str(),
                   a.get(2, "count", Value::none()).is_int() ? a.get(2, "count").as_int() : -1));
}

Value f_join(const Value& v, CallArgs& a) {
    std::string sep = a.get(0, "d", Value("")).str();
    Value attribute = a.get(1, "attribute", Value::none());
    std::string out;
    bool first = true;
    for (const auto& item : iterate(v)) {
        if (!first) out += sep;
        first = false;
        out += (attribute.is_none() ? item : attr_path(item, attribute)).str();
    }
    return Value(out);
}

Value f_first(const Value& v, CallArgs&) {
    ValueList items = iterate(v);
    return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value f_last(const Value& v, CallArgs&) {
    ValueList items = iterate(v);
    return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

Value f_list(const Value& v, CallArgs&) {
    return Value::list(iterate(v));
}

Value f_map(const Value& v, CallArgs& a) {
    ValueList out;
    Value attribute = a.get(99, "attribute");
    if (!attribute.is_undefined()) {
        Value dflt = a.get(99, "default");
        for (const auto& item : iterate(v)) {
            Value x = attr_path(item, attribute);
            out.push_back(x.is_undefined() && !dflt.is_undefined() ? dflt : x);
        }
        return Value::list(std::move(out));
    }
    std::string name = a.get(0, "filter").str();
    FilterFunction f = find_filter(name);
    if (!f) throw Failure("no filter named '" + name + "'");
    CallArgs rest = shift_args(a, 1);
    for (const auto& item : iterate(v)) out.push_back(f(item, rest));
    return Value::list(std::move(out));
}

Value select_impl(const Value& v, CallArgs& a, bool by_attr, bool keep) {
    ValueList out;
    size_t test_pos = by_attr ? 1 : 0;
    Value attribute = by_attr ? a.get(0, "attribute") : Value();
    TestFunction test = nullptr;
    CallArgs rest = shift_args(a, test_pos + 1);
    if (a.positional.size() > test_pos) {
        std::string name = a.positional[test_pos].str();
        test = find_test(name);
        if (!test) throw Failure("no test named '" + name + "'");
    }
    for (const auto& item : iterate(v)) {
        Value subject = by_attr ? attr_path(item, attribute) : item;
        bool ok = test ? test(subject, rest) : subject.truthy();
        if (ok == keep) out.push_back(item);
    }
    return Value::list(std::move(out));
}

Value f_select(const Value& v, CallArgs& a) {
    return select_impl(v, a, false, true);
}
Value f_reject(const Value& v, CallArgs& a) {
    return select_impl(v, a, false, false);
}
Value f_selectattr(const Value& v, CallArgs& a) {
    return select_impl(v, a, true, true);
}
Value f_rejectattr(const Value& v, CallArgs& a) {
    return select_impl(v, a, true, false);
}

Value f_default(const Value& v, CallArgs& a) {
    Value dflt = a.get(0, "default_value", Value(""));
    bool boolean = a.get(1, "boolean", Value(false)).truthy();
    if (v.is_undefined() || (boolean && !v.truthy())) return dflt;
    return v;
}

Value f_items(const Value& v, CallArgs&) {
    if (v.is_undefined()) return Value::list();
    if (!v.is_dict()) throw Failure("Can only get item pairs from a mapping.");
    ValueList out;
    for (const auto& [k, x] : v.dict_ref().entries) out.push_back(Value::list({k, x}, true));
    return Value::list(std::move(out));
}

Value f_safe(const Value& v, CallArgs&) {
    return v.is_string() ? v : Value(v.str());
}

Value f_escape(const Value& v, CallArgs&) {
    std::string out;
    for (char c : v.str()) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&#34;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out += c;
        }
    }
    return Value(out);
}

Value f_indent(const Value& v, CallArgs& a) {
    Value width = a.get(0, "width", Value(4));
    std::string ind =
        width.is_string() ? width.as_string() : std::string(size_t(width.as_int()), ' ');
    bool first = a.get(1, "first", Value(false)).truthy();
    bool blank = a.get(2, "blank", Value(false)).truthy();
    std::string s = v.str() + "\n";
    std::vector<std::string> lines = py_splitlines(s, false);
    std::string rv;
    if (blank) {
        for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + ind : "") + lines[i];
    } else if (!lines.empty()) {
        rv = lines[0];
        for (size_t i = 1; i < lines.size(); ++i)
            rv += "\n" + (lines[i].empty() ? lines[i] : ind + lines[i]);
    }
    if (first) rv = ind + rv;
    return Value(rv);
}

Value f_unique(const Value& v, CallArgs& a) {
    bool cs = a.get(0, "case_sensitive", Value(false)).truthy();
    Value attribute = a.get(1, "attribute", Value::none());
    ValueList out, seen;
    for (const auto& item : iterate(v)) {
        Value key = sort_key(attribute.is_none() ? item : attr_path(item, attribute), cs);
        bool dup = false;
        for (const auto& s : seen) dup = dup || Value::equals(s, key);
        if (!dup) seen.push_back(key), out.push_back(item);
    }
    return Value::list(std::move(out));
}

Value f_sort(const Value& v, CallArgs& a) {
    bool reverse = a.get(0, "reverse", Value(false)).truthy();
    bool cs = a.get(1, "case_sensitive", Value(false)).truthy();
    Value attribute = a.get(2, "attribute", Value::none());
    ValueList items = iterate(v);
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
        Value kx = sort_key(attribute.is_none() ? x : attr_path(x, attribute), cs);
        Value ky = sort_key(attribute.is_none() ? y : attr_path(y, attribute), cs);
        return reverse ? Value::less(ky, kx) : Value::less(kx, ky);
    });
    return Value::list(std::move(items));
}

Value f_reverse(const Value& v, CallArgs&) {
    if (v.is_string()) return slice_value(v, std::nullopt, std::nullopt, -1);
    ValueList items = iterate(v);
    std::reverse(items.begin(), items.end());
    return Value::list(std::move(items));
}

Value f_dictsort(const Value& v, CallArgs& a) {
    bool cs = a.get(0, "case_sensitive", Value(false)).truthy();
    std::string by = a.get(1, "by", Value("key")).str();
    bool reverse = a.get(2, "reverse", Value(false)).truthy();
    ValueList items = f_items(v, a).items();
    size_t pos = by == "value" ? 1 : 0;
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
        Value kx = sort_key(x.items()[pos], cs), ky = sort_key(y.items()[pos], cs);
        return reverse ? Value::less(ky, kx) : Value::less(kx, ky);
    });
    return Value::list(std::move(items));
}

Value f_round(const Value& v, CallArgs& a) {
    int64_t precision = a.get(0, "precision", Value(0)).as_int();
    std::string method = a.get(1, "method", Value("common")).str();
    double scale = std::pow(10.0, double(precision));
    double x = v.as_double() * scale;
    if (method == "ceil") return Value(std::ceil(x) / scale);
    if (method == "floor") return Value(std::floor(x) / scale);
    if (precision < 0) return Value(std::nearbyint(x) / scale);
    // Python's round(): correctly rounded from the exact binary value, ties to even, which is
    // what printf's %.Nf does (2.5 -> 2.0, 2.675 -> 2.67).
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f", int(std::min<int64_t>(precision, 300)), v.as_double());
    return Value(std::strtod(buf, nullptr));
}

Value f_abs(const Value& v, CallArgs&) {
    if (v.is_float()) return Value(std::fabs(v.as_double()));
    if (v.is_int() || v.is_bool()) return Value(int64_t(std::llabs(v.as_int())));
    throw Failure("bad operand type for abs(): '" + v.type_name() + "'");
}

Value min_max(const Value& v, CallArgs& a, bool want_max) {
    bool cs = a.get(0, "case_sensitive", Value(false)).truthy();
    Value attribute = a.get(1, "attribute", Value::none());
    ValueList items = iterate(v);
    if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
    Value best = items[0];
    for (const auto& x : items) {
        Value kx = sort_key(attribute.is_none() ? x : attr_path(x, attribute), cs);
        Value kb = sort_key(attribute.is_none() ? best : attr_path(best, attribute), cs);
        if (want_max ? Value::less(kb, kx) : Value::less(kx, kb)) best = x;
    }
    return best;
}

Value f_max(const Value& v, CallArgs& a) {
    return min_max(v, a, true);
}
Value f_min(const Value& v, CallArgs& a) {
    return min_max(v, a, false);
}

Value f_sum(const Value& v, CallArgs& a) {
    Value attribute = a.get(0, "attribute", Value::none());
    Value total = a.get(1, "start", Value(0));
    for (const auto& x : iterate(v)) {
        Value y = attribute.is_none() ? x : attr_path(x, attribute);
        if (!y.is_number() || !total.is_number())
            throw Failure("unsupported operand type(s) for +: '" + total.type_name() + "' and '" +
                          y.type_name() + "'");
        if (y.is_float() || total.is_float())
            total = Value(total.as_double() + y.as_double());
        else
            total = Value(total.as_int() + y.as_int());
    }
    return total;
}

Value f_batch(const Value& v, CallArgs& a) {
    int64_t n = a.get(0, "linecount").as_int();
    if (n <= 0) throw Failure("batch size must be positive");
    Value fill = a.get(1, "fill_with", Value::none());
    ValueList out, cur;
    for (const auto& x : iterate(v)) {
        cur.push_back(x);
        if (int64_t(cur.size()) == n) out.push_back(Value::list(std::move(cur))), cur.clear();
    }
    if (!cur.empty()) {
        if (!fill.is_none())
            while (int64_t(cur.size()) < n) cur.push_back(fill);
        out.push_back(Value::list(std::move(cur)));
    }
    return Value::list(std::move(out));
}

Value f_wordcount(const Value& v, CallArgs&) {
    // Jinja counts \w+ runs.
    int64_t n = 0;
    bool in_word = false;
    for (unsigned char c : v.str()) {
        bool w = std::isalnum(c) || c == '_' || c >= 0x80;
        if (w && !in_word) ++n;
        in_word = w;
    }
    return Value(n);
}

Value f_center(const Value& v, CallArgs& a) {
    std::string s = v.str();
    int64_t width = a.get(0, "width", Value(80)).as_int();
    int64_t len = int64_t(utf8_length(s));
    if (width <= len) return Value(s);
    int64_t pad = width - len;
    // Python's str.center puts the extra space on the right only for odd widths' parity.
    int64_t left = pad / 2 + (pad & width & 1);
    return Value(std::string(size_t(left), ' ') + s + std::string(size_t(pad - left), ' '));
}

Value f_truncate(const Value& v, CallArgs& a) {
    std::string s = v.str();
    int64_t length = a.get(0, "length", Value(255)).as_int();
    bool killwords = a.get(1, "killwords", Value(false)).truthy();
    std::string end = a.get(2, "end", Value("...")).str();
    int64_t leeway = a.get(3, "leeway", Value(5)).as_int();
    auto cs = utf8_chars(s);
    if (int64_t(cs.size()) <= length + leeway) return Value(s);
    int64_t keep = std::max<int64_t>(0, length - int64_t(utf8_length(end)));
    std::string head;
    for (int64_t i = 0; i < keep; ++i) head += cs[size_t(i)];
    if (killwords) return Value(head + end);
    size_t sp = head.rfind(' ');
    if (sp != std::string::npos) head = head.substr(0, sp);
    return Value(head + end);
}

Value f_format(const Value& v, CallArgs& a) {
    if (!a.positional.empty() && a.positional.size() > 1)
        return Value(percent_format(v.str(), Value::list(a.positional, true)));
    if (a.positional.size() == 1)
        return Value(percent_format(v.str(), Value::list(a.positional, true)));
    return Value(v.str());
}

Value f_attr(const Value& v, CallArgs& a) {
    return get_attr(v, a.get(0, "name").str());
}

// ---- tests ----
bool t_defined(const Value& v, CallArgs&) {
    return !v.is_undefined();
}
bool t_undefined(const Value& v, CallArgs&) {
    return v.is_undefined();
}
bool t_none(const Value& v, CallArgs&) {
    return v.is_none();
}
bool t_string(const Value& v, CallArgs&) {
    return v.is_string();
}
bool t_mapping(const Value& v, CallArgs&) {
    return v.is_dict() && !v.is_namespace();
}
bool t_iterable(const Value& v, CallArgs&) {
    return v.is_undefined() || v.is_string() || v.is_list() || (v.is_dict() && !v.is_namespace());
}
bool t_sequence(const Value& v, CallArgs&) {
    return v.is_string() || v.is_list() || (v.is_dict() && !v.is_namespace());
}
bool t_number(const Value& v, CallArgs&) {
    return v.is_number();
}
bool t_integer(const Value& v, CallArgs&) {
    return v.is_int();
}
bool t_float(const Value& v, CallArgs&) {
    return v.is_float();
}
bool t_boolean(const Value& v, CallArgs&) {
    return v.is_bool();
}
bool t_true(const Value& v, CallArgs&) {
    return v.is_bool() && v.as_int();
}
bool t_false(const Value& v, CallArgs&) {
    return v.is_bool() && !v.as_int();
}
bool t_callable(const Value& v, CallArgs&) {
    return v.is_function();
}
int64_t int_operand(const Value& v) {
    if (!v.is_number()) throw Failure("'" + v.type_name() + "' is not a number");
    return v.is_float() ? int64_t(v.as_double()) : v.as_int();
}
bool t_even(const Value& v, CallArgs&) {
    return int_operand(v) % 2 == 0;
}
bool t_odd(const Value& v, CallArgs&) {
    return int_operand(v) % 2 != 0;
}
bool t_divisibleby(const Value& v, CallArgs& a) {
    int64_t d = int_operand(a.get(0, "num"));
    if (d == 0) throw Failure("integer division or modulo by zero");
    return int_operand(v) % d == 0;
}
bool t_in(const Value& v, CallArgs& a) {
    return contains(a.get(0, "seq"), v);
}
bool t_eq(const Value& v, CallArgs& a) {
    return Value::equals(v, a.get(0, "other"));
}
bool t_ne(const Value& v, CallArgs& a) {
    return !Value::equals(v, a.get(0, "other"));
}
bool t_lt(const Value& v, CallArgs& a) {
    return Value::less(v, a.get(0, "other"));
}
bool t_gt(const Value& v, CallArgs& a) {
    return Value::less(a.get(0, "other"), v);
}
bool t_le(const Value& v, CallArgs& a) {
    return !Value::less(a.get(0, "other"), v);
}
bool t_ge(const Value& v, CallArgs& a) {
    return !Value::less(v, a.get(0, "other"));
}
bool t_sameas(const Value& v, CallArgs& a) {
    Value o = a.get(0, "other");
    if (v.kind() != o.kind()) return false;
    if (v.is_list() || v.is_dict() || v.is_string()) return Value::equals(v, o);
    return Value::equals(v, o);
}
bool t_lower(const Value& v, CallArgs&) {
    return v.is_string() && ascii_lower(v.as_string()) == v.as_string();
}
bool t_upper(const Value& v, CallArgs&) {
    return v.is_string() && ascii_upper(v.as_string()) == v.as_string();
}
bool t_escaped(const Value&, CallArgs&) {
    return false;
}

const std::map<std::string, FilterFunction>& filters() {
    static const std::map<std::string, FilterFunction> table = {
        {"tojson", f_tojson},
        {"trim", f_trim},
        {"length", f_length},
        {"count", f_length},
        {"string", f_string},
        {"int", f_int},
        {"float", f_float},
        {"lower", f_lower},
        {"upper", f_upper},
        {"title", f_title},
        {"capitalize", f_capitalize},
        {"replace", f_replace},
        {"join", f_join},
        {"first", f_first},
        {"last", f_last},
        {"list", f_list},
        {"map", f_map},
        {"select", f_select},
        {"reject", f_reject},
        {"selectattr", f_selectattr},
        {"rejectattr", f_rejectattr},
        {"default", f_default},
        {"d", f_default},
        {"items", f_items},
        {"safe", f_safe},
        {"e", f_escape},
        {"escape", f_escape},
        {"forceescape", f_escape},
        {"indent", f_indent},
        {"unique", f_unique},
        {"sort", f_sort},
        {"reverse", f_reverse},
        {"dictsort", f_dictsort},
        {"round", f_round},
        {"abs", f_abs},
        {"max", f_max},
        {"min", f_min},
        {"sum", f_sum},
        {"batch", f_batch},
        {"wordcount", f_wordcount},
        {"center", f_center},
        {"truncate", f_truncate},
        {"format", f_format},
        {"attr", f_attr},
    };
    return table;
}

const std::map<std::string, TestFunction>& tests() {
    static const std::map<std::string, TestFunction> table = {
        {"defined", t_defined},
        {"undefined", t_undefined},
        {"none", t_none},
        {"string", t_string},
        {"mapping", t_mapping},
        {"iterable", t_iterable},
        {"sequence", t_sequence},
        {"number", t_number},
        {"integer", t_integer},
        {"float", t_float},
        {"boolean", t_boolean},
        {"true", t_true},
        {"false", t_false},
        {"callable", t_callable},
        {"even", t_even},
        {"odd", t_odd},
        {"divisibleby", t_divisibleby},
        {"in", t_in},
        {"equalto", t_eq},
        {"eq", t_eq},
        {"==", t_eq},
        {"ne", t_ne},
        {"!=", t_ne},
        {"lt", t_lt},
        {"lessthan", t_lt},
        {"<", t_lt},
        {"gt", t_gt},
        {"greaterthan", t_gt},
        {">", t_gt},
        {"le", t_le},
        {"<=", t_le},
        {"ge", t_ge},
        {">=", t_ge},
        {"sameas", t_sameas},
        {"lower", t_lower},
        {"upper", t_upper},
        {"escaped", t_escaped},
    };
    return table;
}

}  // namespace

FilterFunction find_filter(const std::string& name) {
    auto it = filters().find(name);
    return it == filters().end() ? nullptr : it->second;
}

TestFunction find_test(const std::string& name) {
    auto it = tests().find(name);
    return it == tests().end() ? nullptr : it->second;
}

std::vector<std::pair<std::string, Value>> builtin_globals() {
    std::vector<std::pair<std::string, Value>> g;
    g.emplace_back(
        "range", Value::function("range", [](CallArgs& a) {
            int64_t start = 0, stop = 0, step = 1;
            if (a.positional.size() == 1)
                stop = a.positional[0].as_int();
            else if (a.positional.size() >= 2) {
                start = a.positional[0].as_int();
                stop = a.positional[1].as_int();
                if (a.positional.size() >= 3) step = a.positional[2].as_int();
            } else
                throw Failure("range expected at least 1 argument, got 0");
            if (step == 0) throw Failure("range() arg 3 must not be zero");
            ValueList out;
            for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
                if (int64_t(out.size()) >= kMaxRange)
                    throw Failure(
                        "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
                out.emplace_back(i);
            }
            return Value::list(std::move(out));
        }));
    g.emplace_back("namespace", Value::function("namespace", [](CallArgs& a) {
                       Value ns = Value::namespace_object();
                       for (const auto& p : a.positional)
                           if (p.is_dict())
                               for (const auto& [k, v] : p.dict_ref().entries)
                                   ns.dict_ref().set(k, v);
                       for (const auto& [k, v] : a.named) ns.dict_ref().set(Value(k), v);
                       return ns;
                   }));
    g.emplace_back("dict", Value::function("dict", [](CallArgs& a) {
                       Value d = Value::dict();
                       for (const auto& p : a.positional)
                           if (p.is_dict())
                               for (const auto& [k, v] : p.dict_ref().entries)
                                   d.dict_ref().set(k, v);
                       for (const auto& [k, v] : a.named) d.dict_ref().set(Value(k), v);
                       return d;
                   }));
    g.emplace_back("joiner", Value::function("joiner", [](CallArgs& a) {
                       std::string sep = a.get(0, "sep", Value(", ")).str();
                       auto used = std::make_shared<bool>(false);
                       return Value::function("joiner", [sep, used](CallArgs&) {
                           if (!*used) {
                               *used = true;
                               return Value("");
                           }
                           return Value(sep);
                       });
                   }));
    g.emplace_back("cycler", Value::function("cycler", [](CallArgs& a) {
                       auto items = std::make_shared<ValueList>(a.positional);
                       auto pos = std::make_shared<size_t>(0);
                       Value c = Value::dict();
                       c.dict_ref().set(Value("next"),
                                        Value::function("cycler.next", [items, pos](CallArgs&) {
                                            if (items->empty()) return Value::none();
                                            Value v = (*items)[*pos % items->size()];
                                            ++*pos;
                                            return v;
                                        }));
                       return c;
                   }));
    return g;
}

}  // namespace moe::jinja
