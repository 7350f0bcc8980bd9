#include "server/metrics.h"

#include <algorithm>
#include <cstdio>

namespace moe::server {

void Metrics::count_request(const std::string& endpoint, int status) {
    std::lock_guard lock(mu_);
    ++requests_[{endpoint, status}];
}

void Metrics::add_generated_tokens(int64_t n) {
    generated_tokens_ += n;
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    recent_.emplace_back(now, n);
    while (!recent_.empty() && now - recent_.front().first > kRateWindow) recent_.pop_front();
}

void Metrics::count_batch_step(int64_t batch_size) {
    ++batch_steps_;
    batch_rows_ += batch_size;
}

double Metrics::tokens_per_second() const {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    while (!recent_.empty() && now - recent_.front().first > kRateWindow) recent_.pop_front();
    if (recent_.empty()) return 0.0;
    int64_t total = 0;
    for (const auto& r : recent_) total += r.second;
    // Over the span the samples cover (at least one second, so that a single burst right after
    // an idle period does not read as an absurd rate).
    const double span = std::chrono::duration<double>(now - recent_.front().first).count();
    return double(total) / std::max(span, 1.0);
}

std::string Metrics::prometheus() const {
    std::string out;
    const auto line = [&out](const char* text) { out += text; };
    const auto metric = [&out](const char* name, const char* type, const char* help, double value) {
        char buf[512];
        std::snprintf(buf, sizeof buf, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name,
                      type, name, value);
        out += buf;
    };
    line(
        "# HELP moestudio_requests_total HTTP requests answered, by endpoint and status.\n"
        "# TYPE moestudio_requests_total counter\n");
    {
        std::lock_guard lock(mu_);
        for (const auto& [key, n] : requests_) {
            out += "moestudio_requests_total{endpoint=\"" + key.first + "\",status=\"" +
                   std::to_string(key.second) + "\"} " + std::to_string(n) + "\n";
        }
    }
    metric("moestudio_prompt_tokens_total", "counter", "Prompt tokens prefilled.",
           double(prompt_tokens_.load()));
    metric("moestudio_generated_tokens_total", "counter", "Tokens generated.",
           double(generated_tokens_.load()));
    metric("moestudio_queue_depth", "gauge", "Requests waiting for a batch slot.",
           double(queue_depth_.load()));
    metric("moestudio_active_requests", "gauge", "Requests being decoded.", double(active_.load()));
    metric("moestudio_decode_steps_total", "counter", "Batched decode steps run.",
           double(batch_steps_.load()));
    metric("moestudio_decode_rows_total", "counter",
           "Sequences advanced by decode steps (rows / steps = mean batch size).",
           double(batch_rows_.load()));
    metric("moestudio_tokens_per_second", "gauge",
           "Tokens generated per second over the last 10 seconds.", tokens_per_second());
    return out;
}

}  // namespace moe::server
