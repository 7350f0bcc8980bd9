#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "core/error.h"

namespace moe {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// 53 random bits -> [0, 1). Done by hand because std::uniform_real_distribution's algorithm
// is implementation-defined, and a seed must give the same ids with every standard library.
double uniform01(std::mt19937_64& rng) {
    return double(rng() >> 11) * 0x1.0p-53;
}

}  // namespace

void SamplingParams::validate() const {
    auto fail = [](const std::string& what) { throw Error("invalid sampling settings: " + what); };
    if (!(temperature >= 0.0f) || !std::isfinite(temperature))
        fail("temperature must be a finite number >= 0 (0 means greedy), got " +
             std::to_string(temperature));
    if (top_k < 0) fail("top_k must be >= 0 (0 disables it), got " + std::to_string(top_k));
    if (!(top_p > 0.0f && top_p <= 1.0f))
        fail("top_p must be in (0, 1] (1 disables it), got " + std::to_string(top_p));
    if (!(min_p >= 0.0f && min_p < 1.0f))
        fail("min_p must be in [0, 1) (0 disables it), got " + std::to_string(min_p));
    if (!(repetition_penalty > 0.0f) || !std::isfinite(repetition_penalty))
        fail("repetition_penalty must be a finite number > 0 (1 disables it), got " +
             std::to_string(repetition_penalty));
}

void apply_repetition_penalty(std::span<float> logits, std::span<const int32_t> history,
                              float penalty) {
    if (penalty == 1.0f || history.empty()) return;
    // HF gathers the scores of the history ids and scatters the penalised values back, so a
    // token repeated n times is penalised once. Sorting a copy finds the distinct ids in
    // O(H log H) without a vocabulary-sized mask.
    std::vector<int32_t> distinct(history.begin(), history.end());
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    for (int32_t id : distinct) {
        if (id < 0 || size_t(id) >= logits.size()) continue;  // no score to penalise
        float& s = logits[size_t(id)];
        s = s < 0.0f ? s * penalty : s / penalty;
    }
}

Sampler::Sampler(SamplingParams params) : params_(params) {
    params_.validate();
    seed_ = params_.seed;
    if (seed_ == 0) {
        std::random_device rd;
        seed_ = (uint64_t(rd()) << 32) ^ uint64_t(rd());
        if (seed_ == 0) seed_ = 1;  // keep 0 meaning "random" if the user copies it back
    }
    rng_.seed(seed_);
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
    require(!logits.empty(), "sampler got no logits: the model returned an empty vocabulary row");
    require(logits.size() <= size_t(std::numeric_limits<int32_t>::max()),
            "sampler got more logits than int32 token ids can address");
    const size_t vocab = logits.size();

    scores_.assign(logits.begin(), logits.end());
    for (float& s : scores_) {
        if (std::isnan(s)) s = kNegInf;
        // +inf would turn (s - max) into inf - inf = NaN below; the largest finite float
        // keeps the same meaning ("certain") without that.
        else if (s == std::numeric_limits<float>::infinity())
            s = std::numeric_limits<float>::max();
    }
    apply_repetition_penalty(scores_, history, params_.repetition_penalty);

    const auto all_masked = [] {
        return Error(
            "sampler: every logit is -inf or NaN, so no token can be chosen (check the model "
            "weights for overflow, or the logit masks)");
    };

    if (params_.greedy || params_.temperature == 0.0f) {
        // Strict '>' keeps the lowest index on ties, as torch.argmax does.
        size_t best = 0;
        for (size_t i = 1; i < vocab; ++i)
            if (scores_[i] > scores_[best]) best = i;
        if (scores_[best] == kNegInf) throw all_masked();
        return int32_t(best);
    }

    // Candidates: tokens with a finite score (masked ones can never be drawn).
    ids_.clear();
    float max_score = kNegInf;
    for (size_t i = 0; i < vocab; ++i) {
        if (scores_[i] == kNegInf) continue;
        ids_.push_back(int32_t(i));
        max_score = std::max(max_score, scores_[i]);
    }
    if (ids_.empty()) throw all_masked();

    // Descending by score, lowest id first on ties, so the order (and thus the draw) is fully
    // determined by the inputs.
    const auto before = [this](int32_t a, int32_t b) {
        float sa = scores_[size_t(a)], sb = scores_[size_t(b)];
        return sa > sb || (sa == sb && a < b);
    };

    // Top-k. Temperature is monotonic, so doing this before scaling selects the same tokens.
    // Like HF (scores < k-th largest are removed) ties with the k-th score are all kept.
    const size_t n = ids_.size();
    if (params_.top_k > 0 && size_t(params_.top_k) < n) {
        const size_t k = size_t(params_.top_k);
        std::nth_element(ids_.begin(), ids_.begin() + ptrdiff_t(k - 1), ids_.end(), before);
        const float kth = scores_[size_t(ids_[k - 1])];
        auto end = std::partition(ids_.begin() + ptrdiff_t(k), ids_.end(),
                                  [&](int32_t id) { return scores_[size_t(id)] >= kth; });
        ids_.erase(end, ids_.end());
    }

    // Temperature + softmax, in place: scores_ now holds unnormalised probabilities
    // exp((s - max) / T) of the candidates, whose order equals the score order, so `before`
    // remains valid. Subtracting the max first keeps exp() from overflowing.
    const float inv_t = 1.0f / params_.temperature;
    double total = 0.0;
    for (int32_t id : ids_) {
        float& s = scores_[size_t(id)];
        const float d = s - max_score;
        // d == 0 special-cased: a subnormal temperature makes inv_t inf, and 0 * inf is NaN.
        s = d == 0.0f ? 1.0f : std::exp(d * inv_t);
        total += s;
    }

    // Top-p: keep the smallest most-likely prefix whose mass reaches top_p (HF removes the
    // tokens whose mass-from-below is <= 1 - top_p, which is the same set). The nucleus is
    // usually tiny, so sort only a growing prefix instead of the whole vocabulary.
    if (params_.top_p < 1.0f) {
        const double target = double(params_.top_p) * total;
        const size_t m_all = ids_.size();
        size_t sorted = 0, keep = m_all;
        double cum = 0.0;
        for (size_t m = std::min<size_t>(m_all, 64); sorted < m_all; m = std::min(m_all, m * 4)) {
            std::partial_sort(ids_.begin() + ptrdiff_t(sorted), ids_.begin() + ptrdiff_t(m),
                              ids_.end(), before);
            for (; sorted < m; ++sorted) {
                cum += scores_[size_t(ids_[sorted])];
                if (cum >= target) break;
            }
            if (sorted < m) {
                keep = sorted + 1;  // always at least the most likely token
                break;
            }
        }
        ids_.resize(keep);
    }

    // Min-p: drop tokens less likely than min_p times the most likely one. The ratio does not
    // depend on the renormalisation after top-k/top-p, so the unnormalised weights suffice.
    if (params_.min_p > 0.0f) {
        float top = 0.0f;
        for (int32_t id : ids_) top = std::max(top, scores_[size_t(id)]);
        const float threshold = params_.min_p * top;
        std::erase_if(ids_, [&](int32_t id) { return scores_[size_t(id)] < threshold; });
    }

    // Draw from the renormalised distribution over the survivors (inverse CDF). Exactly one
    // random number per call keeps a seeded sequence reproducible.
    total = 0.0;
    for (int32_t id : ids_) total += scores_[size_t(id)];
    const double u = uniform01(rng_) * total;
    double cum = 0.0;
    for (int32_t id : ids_) {
        cum += scores_[size_t(id)];
        if (u < cum) return id;
    }
    // Rounding left u at the very top: take the last token that has any mass.
    for (auto it = ids_.rbegin(); it != ids_.rend(); ++it)
        if (scores_[size_t(*it)] > 0.0f) return *it;
    return ids_.front();
}

}  // namespace moe
