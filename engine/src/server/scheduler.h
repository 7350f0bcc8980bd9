#pragma once
// Continuous batching: one thread owns the model and advances every active request together,
// one token per step (Model::forward_batch), while requests join (after their prompt is
// prefilled, one chunk per step so that a long prompt does not stall the others) and leave
// (stop id, stop string, max_tokens, client gone) between steps. Requests beyond the batch
// wait in a bounded queue; beyond that they are refused with 429.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/model.h"
#include "model/sampler.h"
#include "server/api_error.h"
#include "server/metrics.h"
#include "tokenizer/tokenizer.h"

namespace moe::server {

// One request as the scheduler runs it (already tokenized and validated).
struct GenerationJob {
    std::vector<int32_t> prompt;  // not empty
    int max_tokens = 16;          // > 0
    SamplingParams sampling;
    std::vector<std::string> stop;  // stop strings
    std::vector<int32_t> stop_ids;  // end-of-sequence ids (not counted, not shown)
};

enum class FinishReason { Stop, Length };
const char* finish_reason_name(FinishReason r);

struct Usage {
    int64_t prompt_tokens = 0;
    int64_t completion_tokens = 0;  // tokens generated, end-of-sequence id excluded
};

struct StreamEvent {
    enum class Kind { Text, Done, Error } kind = Kind::Text;
    std::string text;                          // Kind::Text
    FinishReason finish = FinishReason::Stop;  // Kind::Done
    Usage usage;                               // Kind::Done
    ApiError error;                            // Kind::Error
};

// The request's side of the scheduler: its events in order, ending with Done or Error.
class RequestStream {
  public:
    // Waits up to `timeout` for the next event; false if none came.
    bool next(StreamEvent& event, std::chrono::milliseconds timeout);
    // The client went away or gave up: the scheduler drops the request at its next step.
    void cancel() { cancelled_ = true; }
    bool cancelled() const { return cancelled_; }

    void push(StreamEvent event);  // scheduler side

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<StreamEvent> events_;
    std::atomic<bool> cancelled_{false};
};

struct SchedulerOptions {
    int max_batch = 8;        // requests decoded together
    int max_queue = 32;       // requests waiting for a batch slot (beyond: 429)
    int prefill_chunk = 256;  // prompt tokens per step for a joining request
};

class Scheduler {
  public:
    // `model` and `tokenizer` must outlive the scheduler; only its thread uses the model.
    Scheduler(Model& model, const Tokenizer& tokenizer, SchedulerOptions options, Metrics& metrics);
    ~Scheduler();  // stop()
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // Starts the thread. Requests submitted before wait in the queue (tests use this to fill
    // the queue deterministically).
    void start();
    // Queues a job; null with `error` set (429 queue full, 503 shutting down) if refused.
    std::shared_ptr<RequestStream> submit(GenerationJob job, ApiError& error);
    // Refuse new requests (503); those queued or running still finish.
    void begin_shutdown();
    bool shutting_down() const { return shutting_down_; }
    // Waits until no request is queued or running, up to `timeout`; true if idle.
    bool wait_idle(std::chrono::milliseconds timeout);
    // Ends the thread; requests still queued or running end with a 503 error.
    void stop();

    const SchedulerOptions& options() const { return options_; }
    const Metrics& metrics() const { return metrics_; }

  private:
    struct Sequence;
    void run();
    void step(std::vector<std::unique_ptr<Sequence>>& active);
    // Handles a freshly sampled token; false once the sequence has finished.
    bool accept_token(Sequence& s, int32_t token);
    void finish(Sequence& s, FinishReason reason);
    void fail(Sequence& s, const ApiError& error);

    Model& model_;
    const Tokenizer& tokenizer_;
    const SchedulerOptions options_;
    Metrics& metrics_;

    std::mutex mu_;
    std::condition_variable cv_, idle_cv_;
    std::deque<std::pair<GenerationJob, std::shared_ptr<RequestStream>>> queue_;
    int64_t running_ = 0;  // active sequences (under mu_)
    std::atomic<bool> shutting_down_{false};
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace moe::server
