#include "server/served_model.h"

#include <algorithm>
#include <filesystem>

#include "api/chat_session.h"
#include "core/error.h"
#include "model/model_tokenizer.h"
#include "server/api_error.h"

namespace moe::server {

GenerationJob ServedModel::make_job(const ParsedRequest& request) const {
    require(model && tokenizer, "the served model has no model or tokenizer");
    GenerationJob job;
    std::string text;
    if (request.chat) {
        ChatTemplateOptions opt;
        opt.add_generation_prompt = true;
        try {
            text = chat_template.apply(request.messages, opt);
        } catch (const std::exception& e) {
            // Templates raise on conversations they do not accept (e.g. roles out of order).
            throw ApiException(ApiError::bad_request(
                std::string("the model's chat template rejected the messages: ") + e.what(),
                "messages"));
        }
    } else {
        text = request.prompt;
    }
    // A completions prompt is raw text: the tokenizer's own framing (e.g. BOS) applies, as in
    // `generate --prompt`. A chat template writes its special tokens itself.
    job.prompt = tokenizer->encode(text, request.chat ? add_special_tokens : true);
    if (job.prompt.empty()) {
        throw ApiException(ApiError::bad_request(
            request.chat ? "the messages rendered to an empty prompt" : "the prompt is empty",
            request.chat ? "messages" : "prompt"));
    }
    const int64_t ctx = model->info().max_context;
    const int64_t n = int64_t(job.prompt.size());
    if (ctx > 0 && n >= ctx) {
        throw ApiException(ApiError::bad_request(
            "the prompt has " + std::to_string(n) + " tokens; this model's context is " +
                std::to_string(ctx) + " tokens, which leaves no room for an answer",
            request.chat ? "messages" : "prompt", "context_length_exceeded"));
    }
    if (request.max_tokens) {
        if (ctx > 0 && n + *request.max_tokens > ctx) {
            throw ApiException(ApiError::bad_request(
                "the prompt has " + std::to_string(n) + " tokens and max_tokens is " +
                    std::to_string(*request.max_tokens) + ": together more than this model's " +
                    "context of " + std::to_string(ctx) + " tokens; lower max_tokens to at most " +
                    std::to_string(ctx - n),
                "max_tokens", "context_length_exceeded"));
        }
        job.max_tokens = *request.max_tokens;
    } else {
        job.max_tokens = default_max_tokens;
        if (ctx > 0) job.max_tokens = int(std::min<int64_t>(job.max_tokens, ctx - n));
    }
    job.sampling = request.sampling;
    job.stop = request.stop;
    for (int64_t id : model->info().eos_token_ids) job.stop_ids.push_back(int32_t(id));
    return job;
}

ServedModel make_served_model(const Model& model, const Tokenizer& tokenizer,
                              const std::string& path, const SamplingParams& defaults) {
    ServedModel s{
        .name = std::filesystem::path(path).filename().string(),
        .model = &model,
        .tokenizer = &tokenizer,
        .chat_template = ChatSession::plain_continuation_template(),
        .add_special_tokens = true,
        .default_sampling = defaults,
        .created = unix_now(),
    };
    if (s.name.empty()) s.name = std::filesystem::path(path).parent_path().filename().string();
    try {
        s.chat_template = load_model_chat_template(path);
        s.add_special_tokens = false;
    } catch (const Error&) {
        // A base model without a chat template continues the text it is given (as the app).
    }
    return s;
}

}  // namespace moe::server
