#include "api/chat_session.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace moe {

namespace {

const char* stop_name(StopReason r) {
    switch (r) {
        case StopReason::Eos:
            return "eos";
        case StopReason::Length:
            return "length";
        case StopReason::Cancelled:
            return "cancelled";
    }
    return "length";
}

}  // namespace

ChatSettings merge_chat_settings(const ChatSettings& base, const std::string& settings_json) {
    ChatSettings s = base;
    const auto j = nlohmann::json::parse(settings_json, nullptr, false);
    if (!j.is_object()) return s;
    const auto num = [&](const char* key, auto& field) {
        if (!j.contains(key) || j[key].is_null()) return;
        if (!j[key].is_number())
            throw Error(std::string("conversation setting '") + key + "' must be a number");
        field = j[key].get<std::decay_t<decltype(field)>>();
    };
    num("temperature", s.sampling.temperature);
    num("top_p", s.sampling.top_p);
    num("top_k", s.sampling.top_k);
    num("min_p", s.sampling.min_p);
    num("repetition_penalty", s.sampling.repetition_penalty);
    num("seed", s.sampling.seed);
    num("max_tokens", s.max_new_tokens);
    if (j.contains("greedy") && j["greedy"].is_boolean()) s.sampling.greedy = j["greedy"];
    return s;
}

ChatSession::ChatSession(std::unique_ptr<Model> model, std::unique_ptr<Tokenizer> tokenizer,
                         ChatTemplate chat_template, ConversationStore& store,
                         std::string model_name, bool add_special_tokens)
    : model_(std::move(model)),
      tokenizer_(std::move(tokenizer)),
      template_(std::move(chat_template)),
      store_(store),
      model_name_(std::move(model_name)),
      cache_(model_->new_cache()),
      add_special_(add_special_tokens) {}

ChatTemplate ChatSession::plain_continuation_template() {
    return ChatTemplate(
        "{% for m in messages %}{% if m['role'] != 'system' %}{{ m['content'] }}{% endif %}"
        "{% endfor %}",
        "plain continuation");
}

ChatReply ChatSession::send(int64_t conversation, const std::string& text, const ChatSettings& s,
                            const TextCallback& on_text, const std::atomic<bool>* cancel) {
    const auto c = store_.conversation(conversation);
    require(c.has_value(), "no conversation " + std::to_string(conversation));
    const int64_t user = store_.append(conversation, c->active_leaf, "user", text);
    return answer(conversation, user, s, on_text, cancel);
}

ChatReply ChatSession::regenerate(int64_t assistant_message, const ChatSettings& s,
                                  const TextCallback& on_text, const std::atomic<bool>* cancel) {
    const auto a = store_.message(assistant_message);
    require(a && a->role == "assistant" && a->parent_id,
            "message " + std::to_string(assistant_message) + " is not an answer");
    return answer(a->conversation_id, *a->parent_id, s, on_text, cancel);
}

ChatReply ChatSession::edit(int64_t user_message, const std::string& text, const ChatSettings& s,
                            const TextCallback& on_text, const std::atomic<bool>* cancel) {
    const auto u = store_.message(user_message);
    require(u && u->role == "user",
            "message " + std::to_string(user_message) + " is not a user message");
    const int64_t edited = store_.append(u->conversation_id, u->parent_id, "user", text);
    return answer(u->conversation_id, edited, s, on_text, cancel);
}

std::vector<int32_t> ChatSession::prompt_ids(int64_t conversation, int64_t user_message) {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    const auto c = store_.conversation(conversation);
    const auto settings = nlohmann::json::parse(c ? c->settings : "{}", nullptr, false);
    if (settings.is_object() && settings.contains("system") && settings["system"].is_string() &&
        !settings["system"].get<std::string>().empty())
        messages.push_back({{"role", "system"}, {"content", settings["system"]}});
    for (const StoredMessage& m : store_.path_to(user_message))
        messages.push_back({{"role", m.role}, {"content", m.content}});
    ChatTemplateOptions opt;
    opt.add_generation_prompt = true;
    // A chat template writes the special tokens itself (BOS included where the model wants it).
    return tokenizer_->encode(template_.apply(messages, opt), add_special_);
}

ChatReply ChatSession::answer(int64_t conversation, int64_t user_message,
                              const ChatSettings& caller, const TextCallback& on_text,
                              const std::atomic<bool>* cancel) {
    const auto conv = store_.conversation(conversation);
    const ChatSettings s = merge_chat_settings(caller, conv ? conv->settings : "{}");
    const std::vector<int32_t> ids = prompt_ids(conversation, user_message);
    require(!ids.empty(), "the chat template rendered an empty prompt");
    // Reuse the K/V of the longest common prefix with what the cache holds (at least one
    // token must run: the next token's logits come from the prompt's last one).
    size_t keep = 0;
    const size_t limit = std::min(cached_ids_.size(), ids.size() - 1);
    while (keep < limit && cached_ids_[keep] == ids[keep]) ++keep;
    keep = std::min<size_t>(keep, size_t(cache_.size()));
    cache_.truncate(int64_t(keep));
    GenerateRequest req;
    req.prompt.assign(ids.begin() + std::ptrdiff_t(keep), ids.end());
    // Never past the model's context (a 128-token model asked for 512 would run off its end).
    const int64_t ctx = model_->info().max_context;
    req.max_new_tokens =
        ctx > 0 ? int(std::max<int64_t>(
                      0, std::min<int64_t>(s.max_new_tokens, ctx - int64_t(ids.size()))))
                : s.max_new_tokens;
    req.sampling = s.sampling;
    for (int64_t id : model_->info().eos_token_ids) req.stop_ids.push_back(int32_t(id));

    TokenStreamDecoder decoder(*tokenizer_, /*skip_special_tokens=*/true);
    std::string text;
    GenerateResult r;
    try {
        r = generate(
            *model_, cache_, req,
            [&](int32_t id) {
                const std::string piece = decoder.push(id);
                if (!piece.empty()) {
                    text += piece;
                    if (on_text) on_text(piece);
                }
                return true;
            },
            cancel);
    } catch (...) {
        cache_.clear();  // its state is unknown now
        cached_ids_.clear();
        throw;
    }
    const std::string tail = decoder.flush();
    if (!tail.empty()) {
        text += tail;
        if (on_text) on_text(tail);
    }
    // What the cache now holds: the prompt and the answer's tokens it has computed.
    cached_ids_ = ids;
    cached_ids_.insert(cached_ids_.end(), r.tokens.begin(), r.tokens.end());
    cached_ids_.resize(std::min(cached_ids_.size(), size_t(cache_.size())));

    const nlohmann::json meta = {{"model", model_name_},
                                 {"prompt_tokens", r.stats.prompt_tokens},
                                 {"prompt_tokens_reused", keep},
                                 {"generated_tokens", r.stats.generated_tokens},
                                 {"prompt_tps", r.stats.prompt_tokens_per_second()},
                                 {"generate_tps", r.stats.generate_tokens_per_second()},
                                 {"ttft_ms", 1e3 * r.stats.time_to_first_token},
                                 {"stop", stop_name(r.reason)}};
    ChatReply reply;
    reply.user_message = user_message;
    reply.assistant_message =
        store_.append(conversation, user_message, "assistant", text, meta.dump());
    reply.text = std::move(text);
    reply.reason = r.reason;
    reply.stats = r.stats;
    return reply;
}

}  // namespace moe
