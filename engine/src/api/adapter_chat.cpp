#include "api/adapter_chat.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/generator.h"
#include "model/model_tokenizer.h"

namespace moe {

namespace {

// The model's chat template, or the plain continuation of base models (as the chat uses).
ChatTemplate template_of(const std::string& model_path, bool& plain) {
    try {
        plain = false;
        return load_model_chat_template(model_path);
    } catch (const Error&) {
        plain = true;
        return ChatSession::plain_continuation_template();
    }
}

}  // namespace

AdapterChat::AdapterChat(std::string model_path, std::string adapter_path)
    : model_path_(std::move(model_path)),
      adapter_path_(std::move(adapter_path)),
      template_(template_of(model_path_, plain_)) {
    require(!adapter_path_.empty(), "chat with an adapter: no adapter given");
    tokenizer_ = load_model_tokenizer(model_path_);
    base_ = load_model(model_path_, LoadOptions{});
    LoadOptions with;
    with.lora_path = adapter_path_;
    try {
        adapted_ = load_model(model_path_, with);
    } catch (const Error& e) {
        throw Error(std::string("the adapter does not load onto ") + model_path_ + ": " + e.what());
    }
}

AdapterChat::Answer AdapterChat::answer(Side side, const std::string& prompt, const ChatSettings& s,
                                        const TextCallback& on_text,
                                        const std::atomic<bool>* cancel) {
    Model& model = side == Base ? *base_ : *adapted_;
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    messages.push_back({{"role", "user"}, {"content", prompt}});
    ChatTemplateOptions opt;
    opt.add_generation_prompt = true;
    GenerateRequest req;
    req.prompt = tokenizer_->encode(template_.apply(messages, opt), plain_);
    require(!req.prompt.empty(), "the chat template rendered an empty prompt");
    // Never past the model's context (as the chat session bounds it).
    const int64_t ctx = model.info().max_context;
    req.max_new_tokens =
        ctx > 0 ? int(std::max<int64_t>(
                      0, std::min<int64_t>(s.max_new_tokens, ctx - int64_t(req.prompt.size()))))
                : s.max_new_tokens;
    req.sampling = s.sampling;  // the same seed on both sides
    for (int64_t id : model.info().eos_token_ids) req.stop_ids.push_back(int32_t(id));
    KvCache cache = model.new_cache();  // each answer starts afresh: no history in an A/B
    TokenStreamDecoder decoder(*tokenizer_, /*skip_special_tokens=*/true);
    Answer a;
    const GenerateResult r = generate(
        model, cache, req,
        [&](int32_t id) {
            const std::string piece = decoder.push(id);
            if (!piece.empty()) {
                a.text += piece;
                if (on_text) on_text(piece);
            }
            return true;
        },
        cancel);
    if (const std::string tail = decoder.flush(); !tail.empty()) {
        a.text += tail;
        if (on_text) on_text(tail);
    }
    a.tokens = r.tokens;
    a.reason = r.reason;
    a.stats = r.stats;
    return a;
}

}  // namespace moe
