#pragma once
// The model as the API presents it: its name, and how a request's messages or prompt become
// the tokens the scheduler runs (the model's chat template and tokenizer, as ChatSession uses
// them), with the request's limits checked against the model's context.
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"
#include "model/sampler.h"
#include "server/openai_protocol.h"
#include "server/scheduler.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace moe::server {

struct ServedModel {
    std::string name;  // what /v1/models lists and requests must name
    const Model* model = nullptr;
    const Tokenizer* tokenizer = nullptr;
    ChatTemplate chat_template;
    // Base models without a chat template: the plain continuation template, and the
    // tokenizer's own BOS/EOS framing for chat prompts too (chat templates write their special
    // tokens themselves; /v1/completions prompts always get the tokenizer's framing).
    bool add_special_tokens = false;
    SamplingParams default_sampling;  // for what a request leaves out
    int default_max_tokens = 512;     // when a request sets no max_tokens
    int64_t created = 0;              // Unix seconds, for /v1/models

    // The prompt's token ids for a request (chat: the template over its messages with the
    // generation prompt; completions: the prompt text). Throws ApiException (400) when the
    // template rejects the messages, the prompt is empty, or prompt + max_tokens exceeds the
    // context (code context_length_exceeded).
    GenerationJob make_job(const ParsedRequest& request) const;
};

// The served model for a loaded model and its folder or file: the tokenizer and chat template
// found there (the plain continuation template when there is none), named after the folder.
// The returned object refers to `model` and `tokenizer`, which must outlive it.
ServedModel make_served_model(const Model& model, const Tokenizer& tokenizer,
                              const std::string& path, const SamplingParams& defaults);

}  // namespace moe::server
