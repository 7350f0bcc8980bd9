#include "server/scheduler.h"

#include <algorithm>
#include <exception>
#include <span>

#include "core/error.h"
#include "server/stop_strings.h"

namespace moe::server {

const char* finish_reason_name(FinishReason r) {
    return r == FinishReason::Length ? "length" : "stop";
}

bool RequestStream::next(StreamEvent& event, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [this] { return !events_.empty(); })) return false;
    event = std::move(events_.front());
    events_.pop_front();
    return true;
}

void RequestStream::push(StreamEvent event) {
    {
        std::lock_guard lock(mu_);
        events_.push_back(std::move(event));
    }
    cv_.notify_all();
}

// A request being run: its own KV cache, sampler, detokenizer and stop-string matcher.
struct Scheduler::Sequence {
    Sequence(GenerationJob j, std::shared_ptr<RequestStream> s, Model& model,
             const Tokenizer& tokenizer)
        : job(std::move(j)),
          stream(std::move(s)),
          cache(model.new_cache()),
          sampler(job.sampling),
          decoder(tokenizer, /*skip_special_tokens=*/true),
          stops(job.stop) {
        if (job.sampling.repetition_penalty != 1.0f) history = job.prompt;
    }

    GenerationJob job;
    std::shared_ptr<RequestStream> stream;
    KvCache cache;
    Sampler sampler;
    TokenStreamDecoder decoder;
    StopStringMatcher stops;
    size_t prefilled = 0;          // prompt tokens run so far
    int64_t generated = 0;         // tokens accepted
    std::vector<int32_t> history;  // for the repetition penalty (only when it is on)
    int32_t pending = -1;          // sampled token whose K/V is not computed yet
    bool done = false;
};

Scheduler::Scheduler(Model& model, const Tokenizer& tokenizer, SchedulerOptions options,
                     Metrics& metrics)
    : model_(model), tokenizer_(tokenizer), options_(options), metrics_(metrics) {
    require(options_.max_batch >= 1, "the batch size must be at least 1");
    require(options_.max_queue >= 0, "the queue length must not be negative");
    require(options_.prefill_chunk >= 1, "the prefill chunk must be at least 1 token");
}

Scheduler::~Scheduler() {
    stop();
}

void Scheduler::start() {
    std::lock_guard lock(mu_);
    if (!thread_.joinable() && !stop_) thread_ = std::thread([this] { run(); });
}

std::shared_ptr<RequestStream> Scheduler::submit(GenerationJob job, ApiError& error) {
    auto stream = std::make_shared<RequestStream>();
    {
        std::lock_guard lock(mu_);
        if (shutting_down_ || stop_) {
            error = ApiError::unavailable("The server is shutting down; no new requests");
            return nullptr;
        }
        // A free batch slot takes the request at the next step, so only the excess waits.
        const int64_t free_slots = std::max<int64_t>(0, options_.max_batch - running_);
        if (int64_t(queue_.size()) >= free_slots + options_.max_queue) {
            error = ApiError::queue_full("The server is busy: " + std::to_string(running_) +
                                         " requests running and " + std::to_string(queue_.size()) +
                                         " waiting (the queue holds " +
                                         std::to_string(options_.max_queue) + "); retry later");
            return nullptr;
        }
        queue_.emplace_back(std::move(job), stream);
        metrics_.set_queue(int64_t(queue_.size()), running_);
    }
    cv_.notify_all();
    return stream;
}

void Scheduler::begin_shutdown() {
    shutting_down_ = true;
}

bool Scheduler::wait_idle(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return idle_cv_.wait_for(lock, timeout, [this] { return queue_.empty() && running_ == 0; });
}

void Scheduler::stop() {
    {
        std::lock_guard lock(mu_);
        shutting_down_ = true;
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    // Whatever never ran (also when the thread was never started) is answered.
    std::lock_guard lock(mu_);
    for (auto& [job, stream] : queue_) {
        StreamEvent e;
        e.kind = StreamEvent::Kind::Error;
        e.error = ApiError::unavailable("The server stopped before the request ran");
        stream->push(std::move(e));
    }
    queue_.clear();
    idle_cv_.notify_all();
}

void Scheduler::run() {
    std::vector<std::unique_ptr<Sequence>> active;
    for (;;) {
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [&] { return stop_ || !queue_.empty() || !active.empty(); });
            if (stop_) break;
            // Join between steps: fill the free batch slots from the queue, oldest first.
            while (int(active.size()) < options_.max_batch && !queue_.empty()) {
                auto [job, stream] = std::move(queue_.front());
                queue_.pop_front();
                if (stream->cancelled()) continue;
                try {
                    active.push_back(
                        std::make_unique<Sequence>(std::move(job), stream, model_, tokenizer_));
                    metrics_.add_prompt_tokens(int64_t(active.back()->job.prompt.size()));
                } catch (const std::exception& e) {  // e.g. sampling settings (checked before)
                    StreamEvent ev;
                    ev.kind = StreamEvent::Kind::Error;
                    ev.error = ApiError::bad_request(e.what());
                    stream->push(std::move(ev));
                }
            }
            running_ = int64_t(active.size());
            metrics_.set_queue(int64_t(queue_.size()), running_);
        }
        step(active);
        std::erase_if(active, [](const auto& s) { return s->done; });
        std::lock_guard lock(mu_);
        running_ = int64_t(active.size());
        metrics_.set_queue(int64_t(queue_.size()), running_);
        if (running_ == 0 && queue_.empty()) idle_cv_.notify_all();
    }
    for (auto& s : active) {
        if (!s->done) fail(*s, ApiError::unavailable("The server stopped during the request"));
    }
    std::lock_guard lock(mu_);
    running_ = 0;
    metrics_.set_queue(int64_t(queue_.size()), 0);
}

void Scheduler::step(std::vector<std::unique_ptr<Sequence>>& active) {
    // Clients that went away leave now, before any more work is spent on them.
    for (auto& s : active) {
        if (!s->done && s->stream->cancelled()) s->done = true;
    }
    // Prefill: each joining request runs one chunk of its prompt per step; after its last
    // chunk it samples its first token and joins the decode batch below in the same step.
    std::vector<float> logits;
    for (auto& sp : active) {
        Sequence& s = *sp;
        if (s.done || s.prefilled >= s.job.prompt.size()) continue;
        try {
            const size_t n =
                std::min(s.job.prompt.size() - s.prefilled, size_t(options_.prefill_chunk));
            model_.forward(std::span<const int32_t>(s.job.prompt).subspan(s.prefilled, n), s.cache,
                           logits, /*all_positions=*/false);
            s.prefilled += n;
            if (s.prefilled == s.job.prompt.size()) {
                const int32_t t = s.sampler.sample(logits, s.history);
                if (accept_token(s, t)) s.pending = t;
                metrics_.add_generated_tokens(s.generated);
            }
        } catch (const std::exception& e) {
            fail(s, ApiError::internal(std::string("generation failed: ") + e.what()));
        }
    }
    // Decode: every sequence with a sampled token runs it, all in one batched forward pass.
    std::vector<Sequence*> batch;
    std::vector<int32_t> tokens;
    std::vector<KvCache*> caches;
    for (auto& sp : active) {
        if (sp->done || sp->pending < 0) continue;
        batch.push_back(sp.get());
        tokens.push_back(sp->pending);
        caches.push_back(&sp->cache);
    }
    if (batch.empty()) return;
    try {
        model_.forward_batch(tokens, caches, logits);
    } catch (const std::exception& e) {
        // The caches' state is unknown now: every request of the batch ends.
        for (Sequence* s : batch)
            fail(*s, ApiError::internal(std::string("generation failed: ") + e.what()));
        return;
    }
    metrics_.count_batch_step(int64_t(batch.size()));
    const size_t vocab = logits.size() / batch.size();
    int64_t produced = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
        Sequence& s = *batch[i];
        s.pending = -1;
        try {
            const std::span<const float> row(logits.data() + i * vocab, vocab);
            const int32_t t = s.sampler.sample(row, s.history);
            const int64_t before = s.generated;
            if (accept_token(s, t)) s.pending = t;
            produced += s.generated - before;
        } catch (const std::exception& e) {
            fail(s, ApiError::internal(std::string("sampling failed: ") + e.what()));
        }
    }
    metrics_.add_generated_tokens(produced);
}

bool Scheduler::accept_token(Sequence& s, int32_t token) {
    const auto& eos = s.job.stop_ids;
    if (std::find(eos.begin(), eos.end(), token) != eos.end()) {
        finish(s, FinishReason::Stop);
        return false;
    }
    ++s.generated;
    if (!s.history.empty()) s.history.push_back(token);
    const std::string text = s.stops.push(s.decoder.push(token));
    if (!text.empty()) {
        StreamEvent e;
        e.text = text;
        s.stream->push(std::move(e));
    }
    if (s.stops.stopped()) {
        finish(s, FinishReason::Stop);
        return false;
    }
    const int64_t ctx = model_.info().max_context;
    if (s.generated >= s.job.max_tokens || (ctx > 0 && s.cache.size() >= ctx)) {
        finish(s, FinishReason::Length);
        return false;
    }
    return true;
}

void Scheduler::finish(Sequence& s, FinishReason reason) {
    // The detokenizer's and the matcher's held-back text belongs to the answer unless a stop
    // string ended it (then it is the stop string itself, or came after it).
    std::string tail = s.stops.push(s.decoder.flush());
    tail += s.stops.flush();
    if (s.stops.stopped()) reason = FinishReason::Stop;
    if (!tail.empty()) {
        StreamEvent e;
        e.text = std::move(tail);
        s.stream->push(std::move(e));
    }
    StreamEvent done;
    done.kind = StreamEvent::Kind::Done;
    done.finish = reason;
    done.usage.prompt_tokens = int64_t(s.job.prompt.size());
    done.usage.completion_tokens = s.generated;
    s.stream->push(std::move(done));
    s.done = true;
}

void Scheduler::fail(Sequence& s, const ApiError& error) {
    StreamEvent e;
    e.kind = StreamEvent::Kind::Error;
    e.error = error;
    s.stream->push(std::move(e));
    s.done = true;
}

}  // namespace moe::server
