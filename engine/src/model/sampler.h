#pragma once
// Next-token sampling with Hugging Face transformers' semantics, so that a model configured
// from generation_config.json behaves here as it does in `model.generate()`.
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace moe {

struct SamplingParams {
    bool greedy = false;              // argmax; also implied by temperature == 0
    float temperature = 1.0f;         // >= 0
    int top_k = 0;                    // keep the k most likely tokens (0 = off)
    float top_p = 1.0f;               // nucleus: (0, 1], 1 = off
    float min_p = 0.0f;               // drop tokens below min_p * max prob: [0, 1), 0 = off
    float repetition_penalty = 1.0f;  // > 0, 1 = off
    uint64_t seed = 0;                // 0 = random seed from std::random_device

    // Throws moe::Error naming the setting and its allowed range.
    void validate() const;
};

// Applies HF's RepetitionPenaltyLogitsProcessor in place: each distinct token of `history`
// (ids outside the vocabulary are skipped) gets logit < 0 ? logit * penalty : logit / penalty.
void apply_repetition_penalty(std::span<float> logits, std::span<const int32_t> history,
                              float penalty);

// Draws token ids from logits. Processor order as in HF: repetition penalty, then either argmax
// or temperature -> top-k -> top-p -> min-p -> a draw from the renormalised distribution.
// Deterministic for a given seed: the same seed and the same logits give the same ids.
// Not thread-safe; use one Sampler per sequence.
class Sampler {
  public:
    explicit Sampler(SamplingParams params);  // validates; throws moe::Error

    // `logits` holds one score per vocabulary entry; NaN counts as -inf. `history` holds the
    // tokens seen so far (prompt included) for the repetition penalty. Throws moe::Error if
    // no token has a finite score.
    int32_t sample(std::span<const float> logits, std::span<const int32_t> history = {});

    const SamplingParams& params() const { return params_; }
    // The seed in use (drawn from std::random_device when params.seed was 0), so that a run
    // can be reproduced.
    uint64_t seed() const { return seed_; }

  private:
    SamplingParams params_;
    uint64_t seed_;
    std::mt19937_64 rng_;
    // Scratch reused across calls: the vocabulary can be ~150k entries and sample() runs once
    // per generated token.
    std::vector<float> scores_;
    std::vector<int32_t> ids_;
};

}  // namespace moe
