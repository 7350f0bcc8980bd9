#include "tokenizer/jinja/strings.h"

#include <cctype>
#include <cstdio>

namespace moe::jinja {

bool is_py_space(const std::string& ch) {
    if (ch.size() == 1) {
        unsigned char c = static_cast<unsigned char>(ch[0]);
        return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f);
    }
    // The non-ASCII code points Python's str.isspace() accepts.
    static const char* const spaces[] = {
        "\xc2\x85",     "\xc2\xa0",     "\xe1\x9a\x80", "\xe2\x80\x80", "\xe2\x80\x81",
        "\xe2\x80\x82", "\xe2\x80\x83", "\xe2\x80\x84", "\xe2\x80\x85", "\xe2\x80\x86",
        "\xe2\x80\x87", "\xe2\x80\x88", "\xe2\x80\x89", "\xe2\x80\x8a", "\xe2\x80\xa8",
        "\xe2\x80\xa9", "\xe2\x80\xaf", "\xe2\x81\x9f", "\xe3\x80\x80"};
    for (const char* s : spaces)
        if (ch == s) return true;
    return false;
}

std::string py_strip(const std::string& s, const std::optional<std::string>& chars, bool left,
                     bool right) {
    std::vector<std::string> cs = utf8_chars(s);
    std::vector<std::string> set;
    if (chars) set = utf8_chars(*chars);
    auto strip_it = [&](const std::string& c) {
        if (!chars) return is_py_space(c);
        for (const auto& x : set)
            if (x == c) return true;
        return false;
    };
    size_t b = 0, e = cs.size();
    if (left)
        while (b < e && strip_it(cs[b])) ++b;
    if (right)
        while (e > b && strip_it(cs[e - 1])) --e;
    std::string out;
    for (size_t i = b; i < e; ++i) out += cs[i];
    return out;
}

std::vector<std::string> py_split(const std::string& s, const std::optional<std::string>& sep,
                                  int64_t maxsplit, bool from_right) {
    std::vector<std::string> out;
    if (sep) {
        if (sep->empty()) throw Failure("empty separator");
        if (!from_right) {
            size_t pos = 0;
            while (true) {
                size_t f = (maxsplit < 0 || int64_t(out.size()) < maxsplit) ? s.find(*sep, pos)
                                                                            : std::string::npos;
                if (f == std::string::npos) {
                    out.push_back(s.substr(pos));
                    break;
                }
                out.push_back(s.substr(pos, f - pos));
                pos = f + sep->size();
            }
        } else {
            size_t end = s.size();
            std::vector<std::string> rev;
            while (true) {
                size_t f = std::string::npos;
                if ((maxsplit < 0 || int64_t(rev.size()) < maxsplit) && end >= sep->size())
                    f = s.rfind(*sep, end - sep->size());
                if (f == std::string::npos) {
                    rev.push_back(s.substr(0, end));
                    break;
                }
                rev.push_back(s.substr(f + sep->size(), end - f - sep->size()));
                end = f;
            }
            out.assign(rev.rbegin(), rev.rend());
        }
        return out;
    }
    std::vector<std::string> cs = utf8_chars(s);
    if (from_right) {
        // Whitespace rsplit: mirror of split from the end.
        std::vector<std::string> rev;
        long i = long(cs.size()) - 1;
        while (true) {
            while (i >= 0 && is_py_space(cs[size_t(i)])) --i;
            if (i < 0) break;
            if (maxsplit >= 0 && int64_t(rev.size()) >= maxsplit) {
                std::string rest;
                for (long k = 0; k <= i; ++k) rest += cs[size_t(k)];
                rev.push_back(rest);
                break;
            }
            std::string word;
            long e = i;
            while (i >= 0 && !is_py_space(cs[size_t(i)])) --i;
            for (long k = i + 1; k <= e; ++k) word += cs[size_t(k)];
            rev.push_back(word);
        }
        out.assign(rev.rbegin(), rev.rend());
        return out;
    }
    size_t i = 0;
    while (true) {
        while (i < cs.size() && is_py_space(cs[i])) ++i;
        if (i >= cs.size()) break;
        if (maxsplit >= 0 && int64_t(out.size()) >= maxsplit) {
            std::string rest;
            for (size_t k = i; k < cs.size(); ++k) rest += cs[k];
            out.push_back(rest);
            break;
        }
        std::string word;
        while (i < cs.size() && !is_py_space(cs[i])) word += cs[i++];
        out.push_back(word);
    }
    return out;
}

std::vector<std::string> py_splitlines(const std::string& s, bool keepends) {
    std::vector<std::string> out;
    std::string line;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == '\x1c' || c == '\x1d' ||
            c == '\x1e') {
            std::string end(1, c);
            if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') end += s[++i];
            out.push_back(keepends ? line + end : line);
            line.clear();
        } else {
            line += c;
        }
    }
    if (!line.empty()) out.push_back(line);
    return out;
}

std::string py_replace(const std::string& s, const std::string& old, const std::string& repl,
                       int64_t count) {
    std::string out;
    if (old.empty()) {
        int64_t n = 0;
        for (const auto& ch : utf8_chars(s)) {
            if (count < 0 || n < count) out += repl, ++n;
            out += ch;
        }
        if (count < 0 || n < count) out += repl;
        return out;
    }
    size_t pos = 0;
    int64_t n = 0;
    while (count < 0 || n < count) {
        size_t f = s.find(old, pos);
        if (f == std::string::npos) break;
        out += s.substr(pos, f - pos) + repl;
        pos = f + old.size();
        ++n;
    }
    return out + s.substr(pos);
}

int64_t py_count(const std::string& s, const std::string& sub) {
    if (sub.empty()) return int64_t(utf8_length(s)) + 1;
    int64_t n = 0;
    for (size_t pos = s.find(sub); pos != std::string::npos; pos = s.find(sub, pos + sub.size()))
        ++n;
    return n;
}

std::string ascii_upper(std::string s) {
    for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

std::string ascii_lower(std::string s) {
    for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string py_title(const std::string& s) {
    std::string out = s;
    bool prev_cased = false;
    for (char& c : out) {
        unsigned char u = static_cast<unsigned char>(c);
        bool alpha = std::isalpha(u);
        if (alpha) c = char(prev_cased ? std::tolower(u) : std::toupper(u));
        prev_cased = alpha;
    }
    return out;
}

std::string py_capitalize(const std::string& s) {
    std::string out = ascii_lower(s);
    if (!out.empty()) out[0] = char(std::toupper(static_cast<unsigned char>(out[0])));
    return out;
}

namespace {

std::string apply_spec(const Value& v, const std::string& spec) {
    if (spec.empty()) return v.str();
    // [[fill]align][width][.precision][type] - the common subset.
    size_t i = 0;
    char fill = ' ', align = 0;
    if (spec.size() >= 2 && (spec[1] == '<' || spec[1] == '>' || spec[1] == '^')) {
        fill = spec[0];
        align = spec[1];
        i = 2;
    } else if (spec[0] == '<' || spec[0] == '>' || spec[0] == '^') {
        align = spec[0];
        i = 1;
    }
    size_t width = 0;
    while (i < spec.size() && std::isdigit(static_cast<unsigned char>(spec[i])))
        width = width * 10 + size_t(spec[i++] - '0');
    int precision = -1;
    if (i < spec.size() && spec[i] == '.') {
        precision = 0;
        ++i;
        while (i < spec.size() && std::isdigit(static_cast<unsigned char>(spec[i])))
            precision = precision * 10 + (spec[i++] - '0');
    }
    char type = i < spec.size() ? spec[i++] : 0;
    if (i != spec.size()) throw Failure("unsupported format spec '" + spec + "'");
    std::string body;
    if (type == 'f' || (type == 0 && precision >= 0 && v.is_number())) {
        char buf[64];
        std::snprintf(buf, sizeof(buf), "%.*f", precision < 0 ? 6 : precision, v.as_double());
        body = buf;
    } else if (type == 'd') {
        body = std::to_string(v.as_int());
    } else {
        body = v.str();
        if (precision >= 0) {
            auto cs = utf8_chars(body);
            body.clear();
            for (size_t k = 0; k < cs.size() && k < size_t(precision); ++k) body += cs[k];
        }
    }
    size_t len = utf8_length(body);
    if (len >= width) return body;
    size_t pad = width - len;
    if (align == 0) align = v.is_number() ? '>' : '<';
    if (align == '<') return body + std::string(pad, fill);
    if (align == '>') return std::string(pad, fill) + body;
    return std::string(pad / 2, fill) + body + std::string(pad - pad / 2, fill);
}

}  // namespace

std::string py_format(const std::string& fmt, const CallArgs& args) {
    std::string out;
    size_t auto_index = 0;
    for (size_t i = 0; i < fmt.size(); ++i) {
        char c = fmt[i];
        if (c == '}') {
            if (i + 1 < fmt.size() && fmt[i + 1] == '}') ++i;
            out += '}';
            continue;
        }
        if (c != '{') {
            out += c;
            continue;
        }
        if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
            out += '{';
            ++i;
            continue;
        }
        size_t end = fmt.find('}', i);
        if (end == std::string::npos) throw Failure("Single '{' encountered in format string");
        std::string field = fmt.substr(i + 1, end - i - 1);
        i = end;
        std::string spec, conv;
        if (size_t colon = field.find(':'); colon != std::string::npos) {
            spec = field.substr(colon + 1);
            field = field.substr(0, colon);
        }
        if (size_t bang = field.find('!'); bang != std::string::npos) {
            conv = field.substr(bang + 1);
            field = field.substr(0, bang);
        }
        Value v;
        if (field.empty()) {
            if (auto_index >= args.positional.size())
                throw Failure("Replacement index " + std::to_string(auto_index) +
                              " out of range for positional args tuple");
            v = args.positional[auto_index++];
        } else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
            size_t k = std::stoul(field);
            if (k >= args.positional.size())
                throw Failure("Replacement index " + field +
                              " out of range for positional args tuple");
            v = args.positional[k];
        } else {
            bool found = false;
            for (const auto& [n, val] : args.named)
                if (n == field) v = val, found = true;
            if (!found) throw Failure("KeyError: '" + field + "' in str.format");
        }
        if (conv == "r") v = Value(v.repr());
        out += apply_spec(v, spec);
    }
    return out;
}

}  // namespace moe::jinja
