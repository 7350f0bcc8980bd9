#pragma once
// Streaming text generation over a Model: prefill the prompt, then sample one token at a time,
// handing each to a callback as soon as it exists. Shared by the GUI, the CLI and the server.
#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "model/kv_cache.h"
#include "model/model.h"
#include "model/sampler.h"

namespace moe {

struct GenerateRequest {
    // Tokens to run before generating. If the cache already holds a prefix (cache.size() > 0)
    // these are the continuation after it, placed at positions cache.size()...; the prefix is
    // not re-run. The prompt must not be empty: the next token's logits come from its last
    // token (to resume from a cache alone, truncate it by one and pass that last token).
    std::vector<int32_t> prompt;
    int max_new_tokens = 128;  // >= 0; 0 only prefills
    SamplingParams sampling;
    // End-of-sequence ids (e.g. ModelInfo::eos_token_ids). Sampling one ends generation with
    // StopReason::Eos; it is neither passed to the callback nor returned in tokens.
    std::vector<int32_t> stop_ids;
    // Prompt tokens per forward call: bounds the activation memory of long prompts.
    int prefill_chunk = 512;
};

enum class StopReason { Length, Eos, Cancelled };

struct GenerateStats {
    int64_t prompt_tokens = 0;     // tokens prefilled (those of the request's prompt)
    int64_t generated_tokens = 0;  // tokens returned (stop ids not counted)
    double prompt_seconds = 0.0;   // prefill, up to the logits of the first new token
    // From the end of prefill to the return: sampling, decode steps and the callback's time.
    double generate_seconds = 0.0;
    double time_to_first_token = 0.0;  // from the call to the first token sampled

    double prompt_tokens_per_second() const {
        return prompt_seconds > 0.0 ? double(prompt_tokens) / prompt_seconds : 0.0;
    }
    double generate_tokens_per_second() const {
        return generate_seconds > 0.0 ? double(generated_tokens) / generate_seconds : 0.0;
    }
};

struct GenerateResult {
    std::vector<int32_t> tokens;  // generated tokens, stop id excluded
    StopReason reason = StopReason::Length;
    GenerateStats stats;
};

// Called with each generated token as soon as it is sampled; return false to cancel
// (the token is kept in the result, and generation ends with StopReason::Cancelled).
using TokenCallback = std::function<bool(int32_t token)>;

// Generates up to req.max_new_tokens tokens after the cache's prefix and req.prompt.
// `cancel`, if given, is polled before each prefill chunk and each generation step, so another
// thread can stop generation; the tokens so far are returned with
// StopReason::Cancelled. The repetition penalty sees req.prompt plus the generated tokens (the
// ids behind a pre-filled cache prefix are not known here).
//
// On return the cache holds the prefix, the prompt and every returned token except the last
// one unless reason == Eos (its K/V are only computed when a next token is needed, which
// saves a forward pass): to continue the conversation, start the next prompt with
// tokens.back() if cache.size() says it is missing. After a cancel during prefill the cache
// holds the chunks run so far.
//
// Throws moe::Error on invalid requests (empty prompt, negative max_new_tokens, bad sampling
// settings) and passes on the model's errors.
GenerateResult generate(Model& model, KvCache& cache, const GenerateRequest& req,
                        const TokenCallback& on_token = {},
                        const std::atomic<bool>* cancel = nullptr);

}  // namespace moe
