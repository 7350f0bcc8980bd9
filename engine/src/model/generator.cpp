#include "model/generator.h"

#include <algorithm>
#include <chrono>
#include <span>
#include <string>

#include "core/error.h"

namespace moe {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

}  // namespace

GenerateResult generate(Model& model, KvCache& cache, const GenerateRequest& req,
                        const TokenCallback& on_token, const std::atomic<bool>* cancel) {
    // Validate everything before the first (possibly very slow) forward call.
    if (req.prompt.empty()) {
        throw Error(cache.size() == 0
                        ? "generate: the prompt is empty; pass at least one token (e.g. the "
                          "model's BOS token)"
                        : "generate: the prompt is empty, so there are no logits to continue the "
                          "cached prefix from; truncate the cache by one position and pass its "
                          "last token as the prompt");
    }
    require(req.max_new_tokens >= 0,
            "generate: max_new_tokens must be >= 0, got " + std::to_string(req.max_new_tokens));
    require(req.prefill_chunk > 0,
            "generate: prefill_chunk must be > 0, got " + std::to_string(req.prefill_chunk));
    Sampler sampler(req.sampling);  // validates the sampling settings

    const auto cancelled = [cancel] {
        return cancel != nullptr && cancel->load(std::memory_order_relaxed);
    };
    const auto is_stop = [&req](int32_t t) {
        return std::find(req.stop_ids.begin(), req.stop_ids.end(), t) != req.stop_ids.end();
    };

    GenerateResult result;
    GenerateStats& stats = result.stats;
    const auto t_start = Clock::now();
    const auto finish = [&](StopReason reason, Clock::time_point t_gen_start) {
        result.reason = reason;
        stats.generated_tokens = int64_t(result.tokens.size());
        stats.generate_seconds = seconds_between(t_gen_start, Clock::now());
        return std::move(result);
    };

    // Prefill in chunks; only the last chunk's last-position logits are needed.
    std::vector<float> logits;
    const std::span<const int32_t> prompt(req.prompt);
    for (size_t pos = 0; pos < prompt.size(); pos += size_t(req.prefill_chunk)) {
        if (cancelled()) {
            stats.prompt_seconds = seconds_between(t_start, Clock::now());
            return finish(StopReason::Cancelled, Clock::now());
        }
        const size_t n = std::min(prompt.size() - pos, size_t(req.prefill_chunk));
        model.forward(prompt.subspan(pos, n), cache, logits, /*all_positions=*/false);
        stats.prompt_tokens += int64_t(n);
    }
    const auto t_prefilled = Clock::now();
    stats.prompt_seconds = seconds_between(t_start, t_prefilled);

    // History for the repetition penalty; only kept when a penalty is on.
    const bool track_history = req.sampling.repetition_penalty != 1.0f;
    std::vector<int32_t> history;
    if (track_history) history = req.prompt;

    result.tokens.reserve(size_t(req.max_new_tokens));
    for (int step = 0; step < req.max_new_tokens; ++step) {
        if (cancelled()) return finish(StopReason::Cancelled, t_prefilled);
        if (step > 0) {
            // Feed the previous token only now, so that the last token of a finished run does
            // not cost a forward pass whose logits nobody would use.
            const int32_t last = result.tokens.back();
            model.forward(std::span<const int32_t>(&last, 1), cache, logits, false);
        }
        const int32_t token = sampler.sample(logits, history);
        if (step == 0) stats.time_to_first_token = seconds_between(t_start, Clock::now());
        if (is_stop(token)) return finish(StopReason::Eos, t_prefilled);

        result.tokens.push_back(token);
        if (track_history) history.push_back(token);
        if (on_token && !on_token(token)) return finish(StopReason::Cancelled, t_prefilled);
    }
    return finish(StopReason::Length, t_prefilled);
}

}  // namespace moe
