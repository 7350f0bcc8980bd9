#include "train/grad_ops.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "core/error.h"
#include "core/parallel.h"
#include "cpu/gemm.h"

namespace moe::train {

void linear_backward(const Linear& l, const float* x, const float* dy, int64_t T, float* dx,
                     LoraGrads& grads) {
    const int64_t in = l.in_features(), out = l.out_features();
    // dx += dy W with the frozen weight as stored (GGUF rows decoded one at a time by
    // gemm_xw: no fp32 copy of a quantized model is ever made).
    std::vector<float> part(static_cast<size_t>(T * in));
    gemm_xw(dy, T, l.w, part.data());
    for (size_t i = 0; i < part.size(); ++i) dx[i] += part[i];
    for (const LoraTerm& term : l.lora) {
        const int64_t r = term.rank;
        LoraGrad& lg = grads[l.name];
        lg.a.resize(size_t(r * in), 0.0f);
        lg.b.resize(size_t(out * r), 0.0f);
        std::vector<float> u(static_cast<size_t>(r)), du(static_cast<size_t>(r));
        for (int64_t t = 0; t < T; ++t) {
            const float* xt = x + t * in;
            const float* g = dy + t * out;
            for (int64_t j = 0; j < r; ++j) {  // u = x A^T
                double s = 0;
                for (int64_t i = 0; i < in; ++i) s += double(xt[i]) * term.a[size_t(j * in + i)];
                u[size_t(j)] = float(s);
            }
            for (int64_t j = 0; j < r; ++j) {  // du = scale · dy B
                double s = 0;
                for (int64_t o = 0; o < out; ++o) s += double(g[o]) * term.b[size_t(o * r + j)];
                du[size_t(j)] = float(s) * term.scale;
            }
            for (int64_t o = 0; o < out; ++o)  // dB += scale · dy^T u
                for (int64_t j = 0; j < r; ++j)
                    lg.b[size_t(o * r + j)] += term.scale * g[o] * u[size_t(j)];
            for (int64_t j = 0; j < r; ++j) {  // dA += du^T x; dx += du A
                const float dj = du[size_t(j)];
                const float* a = term.a.data() + j * in;
                float* ga = lg.a.data() + j * in;
                float* d = dx + t * in;
                for (int64_t i = 0; i < in; ++i) {
                    ga[i] += dj * xt[i];
                    d[i] += dj * a[i];
                }
            }
        }
    }
}

void rms_norm_backward(const RmsNorm& n, const float* x, const float* dy, int64_t rows,
                       int64_t stride, float* dx) {
    const int64_t w = n.width();
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * stride;
        const float* gr = dy + r * stride;
        float* dr = dx + r * stride;
        double ss = 0, gx = 0;
        for (int64_t i = 0; i < w; ++i) {
            ss += double(xr[i]) * xr[i];
            gx += double(gr[i]) * n.weight[size_t(i)] * xr[i];
        }
        const double rs = 1.0 / std::sqrt(ss / double(w) + double(n.eps));
        // y = x·rs·w: dx = rs·(g·w) - x·rs³·mean(g·w·x)
        const double c = rs * rs * rs * gx / double(w);
        for (int64_t i = 0; i < w; ++i) dr[i] = float(rs * gr[i] * n.weight[size_t(i)] - c * xr[i]);
    }
}

void rope_backward(const RotaryEmbedding& r, float* d, int64_t heads, int64_t head_stride,
                   int64_t pos) {
    const int64_t half = r.rotary_dim / 2;
    for (int64_t h = 0; h < heads; ++h) {
        float* v = d + h * head_stride;
        for (int64_t i = 0; i < half; ++i) {
            const float angle = float(pos) * r.inv_freq[size_t(i)];
            const float c = std::cos(angle) * r.attention_scaling;
            const float s = std::sin(angle) * r.attention_scaling;
            const int64_t a = r.interleaved ? 2 * i : i, b = r.interleaved ? 2 * i + 1 : i + half;
            const float ga = v[a], gb = v[b];
            v[a] = ga * c + gb * s;  // the rotation's transpose
            v[b] = gb * c - ga * s;
        }
    }
}

namespace {

// Keys query t may see: [first, t].
int64_t first_key(const AttentionGeometry& g, int64_t t) {
    return g.sliding_window > 0 ? std::max<int64_t>(0, t - g.sliding_window + 1) : 0;
}

}  // namespace

void attention_forward(const AttentionGeometry& g, const float* q, const float* k, const float* v,
                       int64_t T, const float* sinks, float* out, std::vector<float>& probs) {
    const int64_t H = g.heads, group = g.heads / g.kv_heads, dq = g.dim_qk, dv = g.dim_v;
    probs.assign(size_t(H * T * T), 0.0f);
    parallel_for(H, 1, [&](int64_t h0, int64_t h1) {
        std::vector<float> s(static_cast<size_t>(T));
        for (int64_t h = h0; h < h1; ++h) {
            const int64_t kvh = h / group;
            for (int64_t t = 0; t < T; ++t) {
                const float* qt = q + (t * H + h) * dq;
                const int64_t f = first_key(g, t);
                float mx = -FLT_MAX;
                for (int64_t j = f; j <= t; ++j) {
                    const float* kj = k + (j * g.kv_heads + kvh) * dq;
                    float dot = 0.0f;
                    for (int64_t d = 0; d < dq; ++d) dot += qt[d] * kj[d];
                    s[size_t(j)] = dot * g.scale;
                    mx = std::max(mx, s[size_t(j)]);
                }
                if (sinks) mx = std::max(mx, sinks[h]);
                double sum = sinks ? std::exp(double(sinks[h]) - mx) : 0.0;
                for (int64_t j = f; j <= t; ++j) sum += std::exp(double(s[size_t(j)]) - mx);
                float* p = probs.data() + (h * T + t) * T;
                for (int64_t j = f; j <= t; ++j)
                    p[j] = float(std::exp(double(s[size_t(j)]) - mx) / sum);
                float* o = out + (t * H + h) * dv;
                for (int64_t d = 0; d < dv; ++d) {
                    float acc = 0.0f;
                    for (int64_t j = f; j <= t; ++j)
                        acc += p[j] * v[(j * g.kv_heads + kvh) * dv + d];
                    o[d] = acc;
                }
            }
        }
    });
}

void attention_backward(const AttentionGeometry& g, const float* q, const float* k, const float* v,
                        const std::vector<float>& probs, const float* dout, int64_t T, float* dq,
                        float* dk, float* dv) {
    const int64_t H = g.heads, KV = g.kv_heads, group = H / KV, dqk = g.dim_qk, dvd = g.dim_v;
    std::fill(dq, dq + T * H * dqk, 0.0f);
    std::fill(dk, dk + T * KV * dqk, 0.0f);
    std::fill(dv, dv + T * KV * dvd, 0.0f);
    // One task per KV head: the query heads of a group add into the same dk and dv rows.
    parallel_for(KV, 1, [&](int64_t k0, int64_t k1) {
        std::vector<float> dp(static_cast<size_t>(T));
        for (int64_t h = k0 * group; h < k1 * group; ++h) {
            const int64_t kvh = h / group;
            for (int64_t t = 0; t < T; ++t) {
                const float* p = probs.data() + (h * T + t) * T;
                const float* go = dout + (t * H + h) * dvd;
                const int64_t f = first_key(g, t);
                double pdp = 0;
                for (int64_t j = f; j <= t; ++j) {
                    const float* vj = v + (j * KV + kvh) * dvd;
                    float* gv = dv + (j * KV + kvh) * dvd;
                    float d = 0.0f;
                    for (int64_t c = 0; c < dvd; ++c) {
                        d += go[c] * vj[c];
                        gv[c] += p[j] * go[c];
                    }
                    dp[size_t(j)] = d;
                    pdp += double(p[j]) * d;
                }
                // Softmax (a sink only adds to the denominator: same formula).
                const float* qt = q + (t * H + h) * dqk;
                float* gq = dq + (t * H + h) * dqk;
                for (int64_t j = f; j <= t; ++j) {
                    const float ds = p[j] * (dp[size_t(j)] - float(pdp)) * g.scale;
                    if (ds == 0.0f) continue;
                    const float* kj = k + (j * KV + kvh) * dqk;
                    float* gk = dk + (j * KV + kvh) * dqk;
                    for (int64_t c = 0; c < dqk; ++c) {
                        gq[c] += ds * kj[c];
                        gk[c] += ds * qt[c];
                    }
                }
            }
        }
    });
}

void glu_backward(const ExpertActivation& act, const float* g, const float* u, const float* dh,
                  int64_t n, float* dg, float* du) {
    for (int64_t i = 0; i < n; ++i) {
        if (act.kind == ExpertActivation::Kind::SiluGlu) {
            const float sg = 1.0f / (1.0f + std::exp(-g[i]));
            const float silu = g[i] * sg;
            du[i] = dh[i] * silu;
            dg[i] = dh[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
            continue;
        }
        // h = (clamp(u, -l, l) + 1) · g' · sigmoid(alpha g'), g' = min(g, l)
        const float l = act.limit, a = act.alpha;
        const float gc = std::min(g[i], l), uc = std::clamp(u[i], -l, l);
        const float sg = 1.0f / (1.0f + std::exp(-a * gc));
        const float glu = gc * sg;
        du[i] = (u[i] > -l && u[i] < l) ? dh[i] * glu : 0.0f;
        dg[i] = g[i] < l ? dh[i] * (uc + 1.0f) * (sg + gc * a * sg * (1.0f - sg)) : 0.0f;
    }
}

double cross_entropy(const float* logits, int64_t T, int64_t vocab, const int32_t* labels,
                     std::vector<float>& dlogits) {
    dlogits.assign(size_t(T * vocab), 0.0f);
    int64_t n = 0;
    for (int64_t t = 0; t + 1 < T; ++t) n += labels[t + 1] != -100;
    require(n > 0, "cross-entropy: no position has a label");
    double loss = 0;
    for (int64_t t = 0; t + 1 < T; ++t) {
        const int32_t y = labels[t + 1];
        if (y == -100) continue;
        require(y >= 0 && y < vocab, "cross-entropy: label outside the vocabulary");
        const float* l = logits + t * vocab;
        const double mx = *std::max_element(l, l + vocab);
        double sum = 0;
        for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double(l[i]) - mx);
        loss += std::log(sum) + mx - double(l[y]);
        float* d = dlogits.data() + t * vocab;
        for (int64_t i = 0; i < vocab; ++i)
            d[i] = float(std::exp(double(l[i]) - mx) / sum / double(n));
        d[y] -= float(1.0 / double(n));
    }
    return loss / double(n);
}

}  // namespace moe::train
