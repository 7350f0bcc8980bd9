#include "model/router.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace moe {

namespace {

// Indices of the k largest values (ties: lower index first), in descending order.
std::vector<int32_t> top_k_indices(const float* v, int64_t n, int64_t k) {
    std::vector<int32_t> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                      [&](int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
    idx.resize(size_t(k));
    return idx;
}

}  // namespace

Routing Router::route(const float* x, int64_t T) const {
    std::vector<float> logits(size_t(T * cfg.experts));
    gate.forward(x, T, logits.data());
    return route_logits(logits.data(), T);
}

Routing Router::route_logits(const float* logits, int64_t T) const {
    const int64_t E = cfg.experts, k = cfg.top_k;
    require(k > 0 && k <= E, "router: top-k must be within the number of experts");
    require(cfg.n_group >= 1 && E % cfg.n_group == 0,
            "router: experts must split evenly into groups");
    Routing r;
    r.tokens = T;
    r.k = k;
    r.ids.resize(size_t(T * k));
    r.weights.resize(size_t(T * k));
    std::vector<float> scores(static_cast<size_t>(E)), choice(static_cast<size_t>(E));
    for (int64_t t = 0; t < T; ++t) {
        const float* l = logits + t * E;
        if (cfg.scoring == RouterConfig::Scoring::Softmax) {
            const float mx = *std::max_element(l, l + E);
            float sum = 0.0f;
            for (int64_t e = 0; e < E; ++e) sum += (scores[size_t(e)] = std::exp(l[e] - mx));
            for (float& s : scores) s /= sum;
        } else {
            for (int64_t e = 0; e < E; ++e) scores[size_t(e)] = 1.0f / (1.0f + std::exp(-l[e]));
        }
        // Selection uses bias-corrected scores; the weights use the raw scores.
        for (int64_t e = 0; e < E; ++e) {
            choice[size_t(e)] =
                scores[size_t(e)] + (correction_bias.empty() ? 0.0f : correction_bias[size_t(e)]);
        }
        if (cfg.n_group > 1) {
            const int64_t per = E / cfg.n_group;
            std::vector<float> group_score(size_t(cfg.n_group));
            for (int64_t gi = 0; gi < cfg.n_group; ++gi) {
                const float* c = choice.data() + gi * per;
                if (cfg.group_score == RouterConfig::GroupScore::Max) {
                    group_score[size_t(gi)] = *std::max_element(c, c + per);
                } else {
                    const auto best = top_k_indices(c, per, std::min<int64_t>(2, per));
                    float s = 0.0f;
                    for (int32_t b : best) s += c[b];
                    group_score[size_t(gi)] = s;
                }
            }
            const auto keep = top_k_indices(group_score.data(), cfg.n_group, cfg.topk_group);
            std::vector<bool> kept(size_t(cfg.n_group), false);
            for (int32_t gi : keep) kept[size_t(gi)] = true;
            for (int64_t e = 0; e < E; ++e) {
                if (!kept[size_t(e / per)]) choice[size_t(e)] = -INFINITY;
            }
        }
        const auto ids = top_k_indices(choice.data(), E, k);
        float sum = 0.0f;
        for (int64_t j = 0; j < k; ++j) sum += scores[size_t(ids[size_t(j)])];
        for (int64_t j = 0; j < k; ++j) {
            float w = scores[size_t(ids[size_t(j)])];
            if (cfg.norm_topk_prob) w /= (sum + 1e-20f);
            r.ids[size_t(t * k + j)] = ids[size_t(j)];
            r.weights[size_t(t * k + j)] = w * cfg.routed_scaling_factor;
        }
    }
    if (usage_.size() != size_t(E)) usage_.assign(size_t(E), 0);
    if (decode_usage_.size() != size_t(E)) decode_usage_.assign(size_t(E), 0);
    for (const int32_t id : r.ids) ++usage_[size_t(id)];
    if (T == 1)
        for (const int32_t id : r.ids) ++decode_usage_[size_t(id)];
    if (!coactivation_.empty()) {
        for (int64_t t = 0; t < T; ++t) {
            const int32_t* ids = r.ids.data() + t * k;
            for (int64_t a = 0; a < k; ++a)
                for (int64_t b = 0; b < k; ++b)
                    if (a != b) ++coactivation_[size_t(ids[a] * E + ids[b])];
        }
    }
    if (trace_) trace_->steps.push_back({trace_layer_, int32_t(T), r.ids});
    return r;
}

}  // namespace moe
