#pragma once
// Jinja's built-in filters, tests and globals, and Python's attribute/item access on values
// (string, dict and list methods), as an ImmutableSandboxedEnvironment exposes them: methods
// that mutate a list or dict (append, pop, update, ...) are refused like the sandbox does.
#include <optional>
#include <string>

#include "tokenizer/jinja/value.h"

namespace moe::jinja {

using FilterFunction = Value (*)(const Value& subject, CallArgs& args);
using TestFunction = bool (*)(const Value& subject, CallArgs& args);

// Null when no such filter / test exists.
FilterFunction find_filter(const std::string& name);
TestFunction find_test(const std::string& name);

// Jinja's globals: range, namespace, dict, cycler, joiner.
std::vector<std::pair<std::string, Value>> builtin_globals();

// obj.name and obj[key] with Jinja's fallbacks (a missing key is undefined, a dict's methods
// are attributes, a string key on a dict falls back to its methods).
Value get_attr(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);
// obj[start:stop:step]; absent parts are std::nullopt.
Value slice_value(const Value& obj, std::optional<int64_t> start, std::optional<int64_t> stop,
                  std::optional<int64_t> step);

// Python iteration (dict -> keys, str -> characters, undefined -> nothing).
ValueList iterate(const Value& v);
// Python `item in container`.
bool contains(const Value& container, const Value& item);
// Python's len().
int64_t length_of(const Value& v);
// Python's "fmt % args" (the %s/%d/%r/%f subset).
std::string percent_format(const std::string& fmt, const Value& args);

}  // namespace moe::jinja
