#pragma once
// The OpenAI request and response bodies the server speaks: parsing of /v1/chat/completions
// and /v1/completions requests (with OpenAI's field names, types and ranges, and a 400 naming
// the field for anything else) and the JSON of completions, streamed chunks and model lists.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/sampler.h"
#include "server/scheduler.h"

namespace moe::server {

struct ParsedRequest {
    bool chat = true;
    std::string model;
    nlohmann::ordered_json messages;  // chat: [{"role", "content"}], content as a string
    std::string prompt;               // completions
    bool stream = false;
    bool include_usage = false;     // stream_options.include_usage
    std::optional<int> max_tokens;  // max_tokens / max_completion_tokens
    SamplingParams sampling;        // the server's defaults with the request's fields on top
    std::vector<std::string> stop;
};

// Throws ApiException (400) naming the field at fault. `defaults` supplies what the request
// leaves out (the model's generation_config, as the CLI's generate uses it).
ParsedRequest parse_chat_request(const std::string& body, const SamplingParams& defaults);
ParsedRequest parse_completion_request(const std::string& body, const SamplingParams& defaults);

// What every response names.
struct ResponseContext {
    std::string id;  // "chatcmpl-..." / "cmpl-..."
    std::string model;
    int64_t created = 0;  // Unix seconds
};
std::string new_response_id(bool chat);
int64_t unix_now();

nlohmann::json usage_json(const Usage& u);
// A whole (non-streamed) answer.
nlohmann::json completion_json(const ResponseContext& c, bool chat, const std::string& text,
                               FinishReason finish, const Usage& usage);
// One streamed chunk: `text` (chat: the delta's content; with `role`, the opening delta), or
// the closing chunk with `finish` set.
nlohmann::json chunk_json(const ResponseContext& c, bool chat, const std::string& text, bool role,
                          std::optional<FinishReason> finish);
// The closing usage chunk (stream_options.include_usage): empty choices, usage set.
nlohmann::json usage_chunk_json(const ResponseContext& c, bool chat, const Usage& usage);
nlohmann::json models_json(const std::string& model, int64_t created);

// "data: <json>\n\n", with invalid UTF-8 replaced rather than thrown on.
std::string sse_event(const nlohmann::json& j);
std::string dump_json(const nlohmann::json& j);

}  // namespace moe::server
