// Engine's "Chat with this adapter" requests (engine.h), kept apart from the chat's.
#include "api/engine.h"

namespace moe {

void Engine::adapter_chat(
    std::string model_path, std::string adapter_path, std::string prompt, ChatSettings settings,
    std::function<void(int side, const std::string& piece)> on_text,
    std::function<void(const std::optional<AdapterAnswers>&, const std::string& error)> done) {
    post([this, model_path = std::move(model_path), adapter_path = std::move(adapter_path),
          prompt = std::move(prompt), settings, on_text = std::move(on_text),
          done = std::move(done)] {
        cancel_ = false;
        try {
            if (!adapter_chat_ || adapter_chat_->model_path() != model_path ||
                adapter_chat_->adapter_path() != adapter_path) {
                adapter_chat_.reset();  // free the old pair first: two pairs may not fit
                adapter_chat_ = std::make_unique<AdapterChat>(model_path, adapter_path);
            }
            AdapterAnswers a;
            const auto stream = [&](int side) {
                return [&on_text, side](const std::string& piece) {
                    if (on_text) on_text(side, piece);
                };
            };
            a.base =
                adapter_chat_->answer(AdapterChat::Base, prompt, settings, stream(0), &cancel_);
            if (a.base.reason != StopReason::Cancelled)
                a.adapted = adapter_chat_->answer(AdapterChat::Adapted, prompt, settings, stream(1),
                                                  &cancel_);
            if (done) done(a, "");
        } catch (const std::exception& e) {
            if (done) done(std::nullopt, e.what());
        }
    });
}

void Engine::close_adapter_chat(std::function<void()> done) {
    post([this, done = std::move(done)] {
        adapter_chat_.reset();
        if (done) done();
    });
}

}  // namespace moe
