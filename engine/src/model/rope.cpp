#include "model/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/dtype.h"
#include "core/error.h"

namespace moe {

double yarn_get_mscale(double scale, double mscale) {
    if (scale <= 1.0) return 1.0;
    return 0.1 * mscale * std::log(scale) + 1.0;
}

namespace {

// The same float32 arithmetic transformers uses: base ** (arange(0, dim, 2) / dim).
std::vector<float> default_inv_freq(double base, int64_t dim) {
    std::vector<float> f(size_t(dim / 2));
    for (int64_t i = 0; i < dim / 2; ++i) {
        const float exponent = float(2 * i) / float(dim);
        f[size_t(i)] = 1.0f / std::pow(float(base), exponent);
    }
    return f;
}

void apply_llama3(const RopeConfig& c, std::vector<float>& inv) {
    const double old_len = double(c.original_max_position_embeddings);
    const double low_wavelen = old_len / c.low_freq_factor;
    const double high_wavelen = old_len / c.high_freq_factor;
    for (float& f : inv) {
        const double wavelen = 2.0 * std::numbers::pi / f;
        if (wavelen > low_wavelen) {
            f = float(f / c.factor);
        } else if (wavelen >= high_wavelen) {
            const double smooth =
                (old_len / wavelen - c.low_freq_factor) / (c.high_freq_factor - c.low_freq_factor);
            f = float((1.0 - smooth) * f / c.factor + smooth * f);
        }
    }
}

float apply_yarn(const RopeConfig& c, int64_t dim, std::vector<float>& inv) {
    const double factor = c.factor;
    double attention_factor;
    if (c.attention_factor) {
        attention_factor = *c.attention_factor;
    } else if (c.mscale != 0.0 && c.mscale_all_dim != 0.0) {
        attention_factor =
            yarn_get_mscale(factor, c.mscale) / yarn_get_mscale(factor, c.mscale_all_dim);
    } else {
        attention_factor = yarn_get_mscale(factor, 1.0);
    }
    const double base = c.theta;
    const double orig = double(c.original_max_position_embeddings);
    auto correction_dim = [&](double rotations) {
        return (double(dim) * std::log(orig / (rotations * 2.0 * std::numbers::pi))) /
               (2.0 * std::log(base));
    };
    double low = correction_dim(c.beta_fast), high = correction_dim(c.beta_slow);
    if (c.truncate) {
        low = std::floor(low);
        high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, double(dim - 1));
    if (low == high) high += 0.001;  // avoid a zero-width ramp
    for (int64_t i = 0; i < dim / 2; ++i) {
        const float pos_freq = std::pow(float(base), float(2 * i) / float(dim));
        const float extrapolation = 1.0f / pos_freq;
        const float interpolation = 1.0f / (float(factor) * pos_freq);
        const float ramp = std::clamp(float((double(i) - low) / (high - low)), 0.0f, 1.0f);
        const float extrapolation_factor = 1.0f - ramp;
        inv[size_t(i)] =
            interpolation * (1.0f - extrapolation_factor) + extrapolation * extrapolation_factor;
    }
    return float(attention_factor);
}

}  // namespace

RotaryEmbedding RotaryEmbedding::create(const RopeConfig& cfg, int64_t rotary_dim,
                                        int64_t max_position_embeddings, bool interleaved,
                                        bool bf16_frequencies) {
    if (rotary_dim <= 0 || rotary_dim % 2 != 0) {
        throw Error("rotary dimension must be positive and even, got " +
                    std::to_string(rotary_dim));
    }
    RotaryEmbedding r;
    r.rotary_dim = rotary_dim;
    r.interleaved = interleaved;
    r.inv_freq = default_inv_freq(cfg.theta, rotary_dim);
    RopeConfig c = cfg;
    if (c.original_max_position_embeddings <= 0) {
        c.original_max_position_embeddings = max_position_embeddings;
    }
    if (c.type == "linear") {
        for (float& f : r.inv_freq) f = float(f / c.factor);
    } else if (c.type == "llama3") {
        apply_llama3(c, r.inv_freq);
    } else if (c.type == "yarn") {
        r.attention_scaling = apply_yarn(c, rotary_dim, r.inv_freq);
    } else if (c.type != "default") {
        throw Error("unsupported rope type '" + c.type + "'");
    }
    if (!cfg.freq_factors.empty()) {
        if (int64_t(cfg.freq_factors.size()) != rotary_dim / 2) {
            throw Error("rope_freqs holds " + std::to_string(cfg.freq_factors.size()) +
                        " factors; the rotary dimension needs " + std::to_string(rotary_dim / 2));
        }
        for (size_t i = 0; i < r.inv_freq.size(); ++i) r.inv_freq[i] /= cfg.freq_factors[i];
    }
    if (bf16_frequencies) {
        for (float& f : r.inv_freq) f = bf16_to_f32(f32_to_bf16(f));
    }
    return r;
}

void RotaryEmbedding::apply(float* v, int64_t heads, int64_t head_stride, int64_t pos) const {
    const int64_t half = rotary_dim / 2;
    float cosv[512], sinv[512];
    float* cs = cosv;
    float* sn = sinv;
    std::vector<float> big;
    if (half > 512) {
        big.resize(size_t(2 * half));
        cs = big.data();
        sn = big.data() + half;
    }
    for (int64_t i = 0; i < half; ++i) {
        const float angle = float(pos) * inv_freq[size_t(i)];
        cs[i] = std::cos(angle) * attention_scaling;
        sn[i] = std::sin(angle) * attention_scaling;
    }
    for (int64_t h = 0; h < heads; ++h) {
        float* x = v + h * head_stride;
        for (int64_t i = 0; i < half; ++i) {
            const int64_t a = interleaved ? 2 * i : i;
            const int64_t b = interleaved ? 2 * i + 1 : i + half;
            const float x0 = x[a], x1 = x[b];
            x[a] = x0 * cs[i] - x1 * sn[i];
            x[b] = x1 * cs[i] + x0 * sn[i];
        }
    }
}

}  // namespace moe
