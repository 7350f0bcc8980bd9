#pragma once
// "Chat with this adapter" (issue 10): a base model and the same model carrying a trained
// LoRA adapter answer the same prompt, for an A/B look at what the fine-tune changed. Each
// prompt is one user turn rendered with the model's chat template (a base model without one
// continues the text), answered by both with the same sampling settings and seed, so that a
// difference comes from the adapter. Kept apart from the chat session: the conversation's model
// stays loaded and untouched. Memory: both copies map the same files; the base copy's experts
// run as the chat's do (repacked when that is the model's format: a copy of the experts), the
// adapted copy's experts that carry LoRA terms on the reference path, in place.
//
// Synchronous and Qt-free; the Engine (engine.h) runs it on its own thread for the GUI.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "api/chat_session.h"
#include "model/model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace moe {

class AdapterChat {
  public:
    enum Side { Base = 0, Adapted = 1 };
    // Loads the model twice, the second time with `adapter_path` (a PEFT folder or a GGUF
    // adapter) applied. Throws moe::Error naming what failed to load.
    AdapterChat(std::string model_path, std::string adapter_path);

    const std::string& model_path() const { return model_path_; }
    const std::string& adapter_path() const { return adapter_path_; }

    struct Answer {
        std::string text;
        std::vector<int32_t> tokens;  // generated, stop id excluded
        StopReason reason = StopReason::Length;
        GenerateStats stats;
    };
    // One side's answer to `prompt`, streamed to `on_text`. `cancel` stops it (the text so far
    // is returned).
    Answer answer(Side side, const std::string& prompt, const ChatSettings& settings,
                  const TextCallback& on_text = {}, const std::atomic<bool>* cancel = nullptr);

  private:
    std::string model_path_, adapter_path_;
    std::unique_ptr<Model> base_, adapted_;
    std::unique_ptr<Tokenizer> tokenizer_;
    ChatTemplate template_;
    bool plain_ = false;  // no chat template: the tokenizer frames the text
};

}  // namespace moe
