// Jinja chat templates (tokenizer/jinja): the input is a template, rendered with a conversation
// the way chat templates are; bounded loops and output so that a slow template is an error.
#include "fuzz_input.h"
#include "tokenizer/jinja/template.h"

namespace {

const nlohmann::ordered_json& conversation() {
    static const nlohmann::ordered_json m = nlohmann::ordered_json::parse(R"([
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Hi <b>there</b>"},
        {"role": "assistant", "content": "Hello!", "reasoning_content": "greet",
         "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]},
        {"role": "tool", "content": "{\"ok\": true}"},
        {"role": "user", "content": [{"type": "text", "text": "and"}, {"type": "image"}]}
    ])");
    return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string source(reinterpret_cast<const char*>(data), size);
    moefuzz::expect_only_moe_errors("jinja", [&] {
        moe::jinja::RenderLimits limits;
        limits.max_call_depth = 64;
        limits.max_loop_iterations = 20'000;
        limits.max_output_bytes = size_t(1) << 20;
        const moe::jinja::Template t(source, "fuzz template", limits);
        (void)t.render({{"messages", moe::jinja::Value::from_json(conversation())},
                        {"add_generation_prompt", moe::jinja::Value(true)},
                        {"bos_token", moe::jinja::Value("<s>")},
                        {"eos_token", moe::jinja::Value("</s>")}});
    });
    return 0;
}
