// Routed-expert LoRA gradients against central finite differences in double precision (issue
// 7): for the first MoE layer of hf-tiny fixtures with plain SwiGLU experts (mixtral, qwen3_moe)
// and gpt-oss's clamped SwiGLU with biases, every expert's gate/up/down gets a random LoRA term;
// for a random input and a random output cotangent g, the engine's backward pass (fp32) gives
// the gradient of  L = sum g . moe(x)  for each term's A and B, and a double-precision
// re-computation of L with one weight moved by +-h gives the same within 1e-3. The routing is
// held fixed (it depends on x only, which does not move). A trainable router's LoRA gradient
// is checked the same way.
#include <QtTest>
#include <cmath>
#include <random>

#include "model/decoder_model.h"
#include "model/model.h"
#include "test_paths.h"
#include "train/block_grads.h"

namespace {

using Mat = std::vector<double>;

Mat dense(const moe::WeightMatrix& w) {
    std::vector<float> row(static_cast<size_t>(w.cols));
    Mat m(static_cast<size_t>(w.rows * w.cols));
    for (int64_t r = 0; r < w.rows; ++r) {
        w.row_to_f32(r, row.data());
        for (int64_t c = 0; c < w.cols; ++c) m[size_t(r * w.cols + c)] = row[size_t(c)];
    }
    return m;
}

// y = x W^T + b + scale (x A^T) B^T, in double.
std::vector<double> linear(const moe::Linear& l, const Mat& w, const moe::LoraTerm& t,
                           const std::vector<double>& x) {
    const int64_t in = l.in_features(), out = l.out_features(), r = t.rank;
    std::vector<double> u(static_cast<size_t>(r), 0.0), y(static_cast<size_t>(out), 0.0);
    for (int64_t j = 0; j < r; ++j)
        for (int64_t i = 0; i < in; ++i)
            u[size_t(j)] += double(t.a[size_t(j * in + i)]) * x[size_t(i)];
    for (int64_t o = 0; o < out; ++o) {
        double s = l.bias.empty() ? 0.0 : double(l.bias[size_t(o)]);
        for (int64_t i = 0; i < in; ++i) s += w[size_t(o * in + i)] * x[size_t(i)];
        for (int64_t j = 0; j < r; ++j)
            s += double(t.scale) * double(t.b[size_t(o * r + j)]) * u[size_t(j)];
        y[size_t(o)] = s;
    }
    return y;
}

double act(const moe::ExpertActivation& a, double g, double u) {
    if (a.kind == moe::ExpertActivation::Kind::SiluGlu) return g / (1.0 + std::exp(-g)) * u;
    const double gc = std::min(g, double(a.limit));
    const double uc = std::clamp(u, -double(a.limit), double(a.limit));
    return (uc + 1.0) * (gc / (1.0 + std::exp(-double(a.alpha) * gc)));
}

std::unique_ptr<moe::Model> load_reference(const QString& fixture) {
    moe::LoadOptions o;
    o.expert_format = "reference";
    return moe::load_model((moetest::data_dir() + "/hf-tiny/" + fixture).toStdString(), o);
}

moe::MoeBlock* first_moe(moe::Model& model) {
    for (auto& L : dynamic_cast<moe::DecoderModel&>(model).layers)
        if (auto* m = dynamic_cast<moe::MoeBlock*>(L.ffn.get())) return m;
    return nullptr;
}

// A random LoRA term of rank 2 (scale 0.5) on `l`, replacing any it had.
void add_random_term(moe::Linear& l, std::mt19937& rng) {
    std::normal_distribution<float> n(0.0f, 0.3f);
    moe::LoraTerm t;
    t.rank = 2;
    t.scale = 0.5f;
    t.a.resize(size_t(2 * l.in_features()));
    t.b.resize(size_t(l.out_features() * 2));
    for (float& v : t.a) v = n(rng);
    for (float& v : t.b) v = n(rng);
    l.lora = {t};
}

// The engine's forward and backward pass of `moe` for a random input x [T, hidden] and output
// cotangent g (the gradient of L = sum g . moe(x)).
struct BlockPass {
    std::vector<float> x, g;
    moe::train::MoeTape tape;
    moe::train::LoraGrads grads;
};
BlockPass run_block(const moe::MoeBlock& moe, int64_t T, std::mt19937& rng) {
    std::normal_distribution<float> n(0.0f, 0.3f);
    BlockPass p;
    p.x.resize(size_t(T * moe.hidden));
    p.g.resize(p.x.size());
    for (float& v : p.x) v = n(rng) * 3.0f;
    for (float& v : p.g) v = n(rng);
    std::vector<float> out(p.x.size()), dx(p.x.size());
    moe::train::moe_forward(moe, p.x.data(), T, out.data(), p.tape);
    moe::train::moe_backward(moe, p.tape, p.g.data(), T, dx.data(), p.grads);
    return p;
}

}  // namespace

class ExpertLoraFiniteDifferences : public QObject {
    Q_OBJECT

  private slots:
    void matchesFiniteDifferences_data() {
        QTest::addColumn<QString>("fixture");
        for (const char* f : {"mixtral-s1", "qwen3_moe-s1", "gpt_oss-s1"}) QTest::newRow(f) << f;
    }

    void matchesFiniteDifferences() {
        QFETCH(QString, fixture);
        auto model = load_reference(fixture);
        moe::MoeBlock* moe = first_moe(*model);
        QVERIFY(moe && !moe->experts.empty());
        std::mt19937 rng(11);
        for (moe::Expert& e : moe->experts)
            for (moe::Linear* l : {&e.gate, &e.up, &e.down}) add_random_term(*l, rng);
        const int64_t T = 5, H = moe->hidden;
        const BlockPass pass = run_block(*moe, T, rng);
        const std::vector<float>& x = pass.x;
        const std::vector<float>& g = pass.g;
        const moe::train::MoeTape& tape = pass.tape;
        const moe::train::LoraGrads& grads = pass.grads;

        // L in double for the routing of the forward pass, experts' terms as they are now.
        const moe::Routing& r = tape.routing;
        std::vector<std::array<Mat, 3>> w(moe->experts.size());
        for (size_t e = 0; e < moe->experts.size(); ++e)
            w[e] = {dense(moe->experts[e].gate.w), dense(moe->experts[e].up.w),
                    dense(moe->experts[e].down.w)};
        const auto loss = [&](size_t only) {  // the terms of expert `only`'s tokens
            double L = 0;
            for (int64_t t = 0; t < T; ++t) {
                for (int64_t j = 0; j < r.k; ++j) {
                    const size_t e = size_t(r.ids[size_t(t * r.k + j)]);
                    if (e != only) continue;
                    const moe::Expert& ex = moe->experts[e];
                    std::vector<double> xt(x.begin() + t * H, x.begin() + (t + 1) * H);
                    const auto gv = linear(ex.gate, w[e][0], ex.gate.lora[0], xt);
                    const auto uv = linear(ex.up, w[e][1], ex.up.lora[0], xt);
                    std::vector<double> h(gv.size());
                    for (size_t i = 0; i < h.size(); ++i) h[i] = act(moe->activation, gv[i], uv[i]);
                    const auto y = linear(ex.down, w[e][2], ex.down.lora[0], h);
                    double dot = 0;
                    for (int64_t c = 0; c < H; ++c)
                        dot += double(g[size_t(t * H + c)]) * y[size_t(c)];
                    L += double(r.weights[size_t(t * r.k + j)]) * dot;
                }
            }
            return L;
        };
        int checked = 0;
        std::uniform_int_distribution<size_t> pick(0, 1u << 30);
        for (size_t e = 0; e < moe->experts.size(); ++e) {
            moe::Expert& ex = moe->experts[e];
            for (moe::Linear* l : {&ex.gate, &ex.up, &ex.down}) {
                const auto it = grads.find(l->name);
                if (it == grads.end()) continue;  // no token reached this expert
                for (const bool is_a : {true, false}) {
                    std::vector<float>& p = is_a ? l->lora[0].a : l->lora[0].b;
                    const std::vector<float>& mine = is_a ? it->second.a : it->second.b;
                    double max_fd = 0, max_diff = 0;
                    for (int s = 0; s < 24; ++s) {  // a sample of each tensor's weights
                        const size_t i = pick(rng) % p.size();
                        const float keep = p[i];
                        const double h = 1e-3;
                        p[i] = float(keep + h);
                        const double up = loss(e);
                        p[i] = float(keep - h);
                        const double down = loss(e);
                        p[i] = keep;
                        // The perturbation as stored (fp32) is what moved: divide by it.
                        const double fd =
                            (up - down) / (double(float(keep + h)) - double(float(keep - h)));
                        max_fd = std::max(max_fd, std::abs(fd));
                        max_diff = std::max(max_diff, std::abs(fd - double(mine[i])));
                    }
                    QVERIFY2(max_diff <= 1e-3 * std::max(max_fd, 1e-6),
                             qPrintable(QString("%1 %2: max |fd| %3, max |diff| %4")
                                            .arg(QString::fromStdString(l->name))
                                            .arg(is_a ? "A" : "B")
                                            .arg(max_fd)
                                            .arg(max_diff)));
                    ++checked;
                }
            }
        }
        QVERIFY(checked >= 6);
        qInfo("%s: %d expert LoRA tensors checked", qPrintable(fixture), checked);
    }

    // A trainable router: its LoRA gradient flows through the routing weights (softmax or
    // sigmoid, renormalised top-k, scaling); the selection stays as the forward pass made it.
    void routerMatchesFiniteDifferences_data() {
        QTest::addColumn<QString>("fixture");
        for (const char* f : {"mixtral-s1", "qwen2_moe-s1", "glm4_moe-s1"}) QTest::newRow(f) << f;
    }

    void routerMatchesFiniteDifferences() {
        QFETCH(QString, fixture);
        auto model = load_reference(fixture);
        moe::MoeBlock* moe = first_moe(*model);
        QVERIFY(moe);
        std::mt19937 rng(5);
        moe::Linear& gate = moe->router.gate;
        add_random_term(gate, rng);
        const int64_t T = 6, H = moe->hidden, E = gate.out_features();
        const BlockPass pass = run_block(*moe, T, rng);
        const std::vector<float>& x = pass.x;
        const std::vector<float>& g = pass.g;
        const moe::train::MoeTape& tape = pass.tape;
        const auto& mine = pass.grads.at(gate.name);

        // L(router) in double: the experts' outputs as the forward pass made them, weighted by
        // the routing weights the perturbed router gives for the same choice of experts.
        const moe::Routing& r = tape.routing;
        const Mat w = dense(gate.w);
        const moe::RouterConfig& rc = moe->router.cfg;
        const auto loss = [&] {
            double L = 0;
            for (int64_t t = 0; t < T; ++t) {
                std::vector<double> xt(x.begin() + t * H, x.begin() + (t + 1) * H);
                const auto z = linear(gate, w, gate.lora[0], xt);
                std::vector<double> sc(static_cast<size_t>(E));
                if (rc.scoring == moe::RouterConfig::Scoring::Softmax) {
                    const double mx = *std::max_element(z.begin(), z.end());
                    double sum = 0;
                    for (int64_t e = 0; e < E; ++e)
                        sum += (sc[size_t(e)] = std::exp(z[size_t(e)] - mx));
                    for (double& v : sc) v /= sum;
                } else {
                    for (int64_t e = 0; e < E; ++e)
                        sc[size_t(e)] = 1.0 / (1.0 + std::exp(-z[size_t(e)]));
                }
                double chosen = 0;
                for (int64_t j = 0; j < r.k; ++j) chosen += sc[size_t(r.ids[size_t(t * r.k + j)])];
                for (int64_t j = 0; j < r.k; ++j) {
                    double wt = sc[size_t(r.ids[size_t(t * r.k + j)])];
                    if (rc.norm_topk_prob) wt /= chosen + 1e-20;
                    wt *= rc.routed_scaling_factor;
                    const float* y = tape.expert_out.data() + (t * r.k + j) * H;
                    double dot = 0;
                    for (int64_t c = 0; c < H; ++c) dot += double(g[size_t(t * H + c)]) * y[c];
                    L += wt * dot;
                }
            }
            return L;
        };
        for (const bool is_a : {true, false}) {
            std::vector<float>& p = is_a ? gate.lora[0].a : gate.lora[0].b;
            const std::vector<float>& got = is_a ? mine.a : mine.b;
            double max_fd = 0, max_diff = 0;
            for (size_t i = 0; i < p.size(); i += std::max<size_t>(1, p.size() / 40)) {
                const float keep = p[i];
                const double h = 1e-3;
                p[i] = float(keep + h);
                const double up = loss();
                p[i] = float(keep - h);
                const double down = loss();
                p[i] = keep;
                const double fd = (up - down) / (double(float(keep + h)) - double(float(keep - h)));
                max_fd = std::max(max_fd, std::abs(fd));
                max_diff = std::max(max_diff, std::abs(fd - double(got[i])));
            }
            QVERIFY2(max_fd > 0 && max_diff <= 1e-3 * max_fd,
                     qPrintable(QString("router %1: max |fd| %2, max |diff| %3")
                                    .arg(is_a ? "A" : "B")
                                    .arg(max_fd)
                                    .arg(max_diff)));
        }
    }
};

QTEST_APPLESS_MAIN(ExpertLoraFiniteDifferences)
#include "tst_expert_lora_fd.moc"
