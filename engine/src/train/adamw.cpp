#include "train/adamw.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace moe::train {

void AdamW::step(PeftTensors& params, const PeftTensors& grads, double lr) {
    ++t_;
    const double bc1 = 1.0 - std::pow(c_.beta1, double(t_));
    const double bc2 = 1.0 - std::pow(c_.beta2, double(t_));
    const double step_size = lr / bc1, bc2_sqrt = std::sqrt(bc2);
    for (auto& [name, p] : params) {
        const auto git = grads.find(name);
        const std::vector<float>* g = git == grads.end() ? nullptr : &git->second;
        require(!g || g->size() == p.size(),
                "AdamW: gradient of '" + name + "' has the wrong size");
        std::vector<float>& m = state_[name + ".m"];
        std::vector<float>& v = state_[name + ".v"];
        m.resize(p.size(), 0.0f);
        v.resize(p.size(), 0.0f);
        for (size_t i = 0; i < p.size(); ++i) {
            const double gi = g ? (*g)[i] : 0.0;
            double pi = p[i] * (1.0 - lr * c_.weight_decay);
            const double mi = c_.beta1 * m[i] + (1.0 - c_.beta1) * gi;
            const double vi = c_.beta2 * v[i] + (1.0 - c_.beta2) * gi * gi;
            m[i] = float(mi);
            v[i] = float(vi);
            pi -= step_size * mi / (std::sqrt(vi) / bc2_sqrt + c_.eps);
            p[i] = float(pi);
        }
    }
}

double clip_grad_norm(PeftTensors& grads, double max_norm) {
    double ss = 0;
    for (const auto& [name, g] : grads)
        for (const float v : g) ss += double(v) * v;
    const double norm = std::sqrt(ss);
    if (max_norm > 0 && norm > max_norm) {
        const double scale = max_norm / (norm + 1e-6);  // torch's clip_coef
        for (auto& [name, g] : grads)
            for (float& v : g) v = float(v * scale);
    }
    return norm;
}

LrSchedule parse_lr_schedule(const std::string& s) {
    if (s == "constant") return LrSchedule::Constant;
    if (s == "linear") return LrSchedule::Linear;
    if (s == "cosine") return LrSchedule::Cosine;
    throw Error("learning-rate schedule '" + s + "': expected constant, linear or cosine");
}

double scheduled_lr(LrSchedule s, double peak, int64_t step, int64_t warmup, int64_t total) {
    // transformers' get_{constant,linear,cosine}_schedule_with_warmup: the factor at the step
    // an update uses (the first update of a warm-up uses 0).
    if (step < warmup) return peak * double(step) / double(std::max<int64_t>(1, warmup));
    if (s == LrSchedule::Constant) return peak;
    const double span = double(std::max<int64_t>(1, total - warmup));
    const double progress = std::clamp(double(step - warmup) / span, 0.0, 1.0);
    if (s == LrSchedule::Linear) return peak * (1.0 - progress);
    return peak * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

}  // namespace moe::train
