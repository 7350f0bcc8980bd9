#pragma once
// A chat over a loaded model, kept in the conversation store: the turn's user message is
// committed before generation starts, the prompt is the model's chat template over the
// conversation's branch (with the conversation's system prompt), the answer streams out as
// text and is committed when generation ends (also when it was stopped). Sending, editing and
// regenerating are the three ways a turn starts; the last two add sibling branches. The
// conversation's own settings (system prompt, sampling) apply on top of the caller's.
//
// Synchronous and Qt-free; the Engine (engine.h) runs it on its own thread for the GUI.
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/generator.h"
#include "model/model.h"
#include "store/conversation_store.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace moe {

struct ChatSettings {
    SamplingParams sampling;
    int max_new_tokens = 512;
};

// `base` with what a conversation's settings JSON sets: "temperature", "top_p", "top_k",
// "min_p", "repetition_penalty", "seed", "greedy", "max_tokens" (others, e.g. "system", are
// not sampling settings). Throws moe::Error naming a value of the wrong type.
ChatSettings merge_chat_settings(const ChatSettings& base, const std::string& settings_json);

struct ChatReply {
    int64_t user_message = 0, assistant_message = 0;
    std::string text;
    StopReason reason = StopReason::Length;
    // stats.prompt_tokens counts the prompt tokens this turn ran; the rest came from the KV
    // cache kept since the turn before (a growing conversation re-runs only its new messages).
    GenerateStats stats;
};

// Receives each new piece of the answer's text as it is decoded.
using TextCallback = std::function<void(const std::string& piece)>;

class ChatSession {
  public:
    // add_special_tokens: let the tokenizer add its BOS/EOS framing (for the plain
    // continuation template of base models; chat templates write their own special tokens).
    ChatSession(std::unique_ptr<Model> model, std::unique_ptr<Tokenizer> tokenizer,
                ChatTemplate chat_template, ConversationStore& store, std::string model_name,
                bool add_special_tokens = false);

    // For base models without a chat template: the conversation's texts one after the other,
    // so that the model continues them (a story model continues the story).
    static ChatTemplate plain_continuation_template();

    const ModelInfo& info() const { return model_->info(); }
    const Model& model() const { return *model_; }
    Model& mutable_model() { return *model_; }
    const std::string& model_name() const { return model_name_; }

    // Adds `text` as a user message after the conversation's active leaf and answers it.
    ChatReply send(int64_t conversation, const std::string& text, const ChatSettings& s,
                   const TextCallback& on_text = {}, const std::atomic<bool>* cancel = nullptr);
    // A new answer to the user message that `assistant_message` answered (a sibling branch).
    ChatReply regenerate(int64_t assistant_message, const ChatSettings& s,
                         const TextCallback& on_text = {},
                         const std::atomic<bool>* cancel = nullptr);
    // `user_message` rewritten as a sibling with `text`, then answered.
    ChatReply edit(int64_t user_message, const std::string& text, const ChatSettings& s,
                   const TextCallback& on_text = {}, const std::atomic<bool>* cancel = nullptr);

  private:
    ChatReply answer(int64_t conversation, int64_t user_message, const ChatSettings& caller,
                     const TextCallback& on_text, const std::atomic<bool>* cancel);
    std::vector<int32_t> prompt_ids(int64_t conversation, int64_t user_message);

    std::unique_ptr<Model> model_;
    std::unique_ptr<Tokenizer> tokenizer_;
    ChatTemplate template_;
    ConversationStore& store_;
    std::string model_name_;
    KvCache cache_;
    std::vector<int32_t> cached_ids_;  // the tokens whose K/V the cache holds
    bool add_special_ = false;
};

}  // namespace moe
