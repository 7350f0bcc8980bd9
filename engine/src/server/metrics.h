#pragma once
// The server's counters, rendered as Prometheus text at GET /metrics. Updated from the HTTP
// threads (requests) and the scheduler thread (tokens, queue), hence atomics and a mutex.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace moe::server {

class Metrics {
  public:
    // One finished HTTP request to `endpoint` (the route, not the raw path) with `status`.
    void count_request(const std::string& endpoint, int status);
    void add_prompt_tokens(int64_t n) { prompt_tokens_ += n; }
    // Tokens produced by one scheduler step (all sequences of the batch together).
    void add_generated_tokens(int64_t n);
    void set_queue(int64_t waiting, int64_t active) {
        queue_depth_ = waiting;
        active_ = active;
    }
    void count_batch_step(int64_t batch_size);

    int64_t generated_tokens() const { return generated_tokens_; }
    int64_t queue_depth() const { return queue_depth_; }
    int64_t active() const { return active_; }
    // Generated tokens per second over the last few seconds (0 when idle that long).
    double tokens_per_second() const;

    // Prometheus text exposition format (version 0.0.4).
    std::string prometheus() const;

  private:
    using Clock = std::chrono::steady_clock;
    static constexpr std::chrono::seconds kRateWindow{10};

    mutable std::mutex mu_;
    std::map<std::pair<std::string, int>, uint64_t> requests_;
    // (time, tokens) of recent steps, for the rate; older than kRateWindow are dropped.
    mutable std::deque<std::pair<Clock::time_point, int64_t>> recent_;
    std::atomic<int64_t> prompt_tokens_{0}, generated_tokens_{0};
    std::atomic<int64_t> queue_depth_{0}, active_{0};
    std::atomic<int64_t> batch_steps_{0}, batch_rows_{0};
};

}  // namespace moe::server
