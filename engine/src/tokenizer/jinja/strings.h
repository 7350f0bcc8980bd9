#pragma once
// Python str semantics the templates rely on: Unicode-aware whitespace stripping, split,
// title-casing and str.format, over UTF-8 strings.
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace moe::jinja {

bool is_py_space(const std::string& ch);  // one UTF-8 character
// `chars` null: whitespace. left/right select lstrip/rstrip/strip.
std::string py_strip(const std::string& s, const std::optional<std::string>& chars, bool left,
                     bool right);
// str.split(sep, maxsplit) / str.rsplit; sep null splits on whitespace runs.
std::vector<std::string> py_split(const std::string& s, const std::optional<std::string>& sep,
                                  int64_t maxsplit, bool from_right = false);
std::vector<std::string> py_splitlines(const std::string& s, bool keepends);
std::string py_replace(const std::string& s, const std::string& old, const std::string& repl,
                       int64_t count);
int64_t py_count(const std::string& s, const std::string& sub);
std::string ascii_upper(std::string s);
std::string ascii_lower(std::string s);
std::string py_title(const std::string& s);       // str.title()
std::string py_capitalize(const std::string& s);  // str.capitalize()
// str.format(*args, **kwargs).
std::string py_format(const std::string& fmt, const CallArgs& args);

}  // namespace moe::jinja
