#pragma once
// A compiled Jinja template, rendered the way transformers renders chat templates
// (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loop controls).
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace moe::jinja {

struct StmtListHolder;

// Bounds that stop a runaway template (deep macro recursion, huge loops or output) with an
// error instead of exhausting the stack or memory.
struct RenderLimits {
    int max_call_depth = 200;
    int64_t max_loop_iterations = 5'000'000;
    size_t max_output_bytes = size_t(256) << 20;
};

class Template {
  public:
    // `name` prefixes every error, e.g. "chat template (tokenizer_config.json)".
    // Throws moe::Error "<name>, line N: <what>" on syntax errors.
    Template(const std::string& source, std::string name, RenderLimits limits = {});

    // Renders with these variables (and functions) on top of Jinja's globals.
    // Throws moe::Error "<name>, line N: <what>" on runtime errors, raise_exception included.
    std::string render(const std::vector<std::pair<std::string, Value>>& variables) const;

    const std::string& name() const { return name_; }

  private:
    std::string name_;
    RenderLimits limits_;
    std::shared_ptr<const StmtListHolder> body_;
};

}  // namespace moe::jinja
