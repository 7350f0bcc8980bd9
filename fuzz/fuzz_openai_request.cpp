// The server's OpenAI request bodies (server/openai_protocol.h): chat and completion requests
// parsed from untrusted JSON; a bad body is an ApiException (a 400 naming the field), never
// a crash or another exception.
#include "fuzz_input.h"
#include "server/api_error.h"
#include "server/openai_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string body(reinterpret_cast<const char*>(data), size);
    const moe::SamplingParams defaults;
    for (bool chat : {true, false}) {
        moefuzz::expect_only_moe_errors("openai_request", [&] {
            try {
                (void)(chat ? moe::server::parse_chat_request(body, defaults)
                            : moe::server::parse_completion_request(body, defaults));
            } catch (const moe::server::ApiException&) {
            }
        });
    }
    return 0;
}
