// Sampler: HF-compatible processors (repetition penalty, temperature, top-k, top-p, min-p),
// greedy tie-breaking, seeding, and the sampled frequencies against a naive reference.
#include <QObject>
#include <QTest>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include "core/error.h"
#include "model/sampler.h"

using moe::Sampler;
using moe::SamplingParams;

Q_DECLARE_METATYPE(std::vector<float>)
Q_DECLARE_METATYPE(std::vector<double>)

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// The expected distribution, computed the slow, obvious way (full sorts, doubles) from HF's
// definitions. Returns nullopt when a top-p / min-p cut falls so close to a token that float
// rounding could legitimately decide it either way.
std::optional<std::vector<double>> reference_distribution(const std::vector<float>& logits,
                                                          const std::vector<int32_t>& history,
                                                          const SamplingParams& p) {
    const size_t v = logits.size();
    std::vector<double> s(logits.begin(), logits.end());
    for (int32_t id : std::set<int32_t>(history.begin(), history.end()))
        s[size_t(id)] = s[size_t(id)] < 0 ? s[size_t(id)] * p.repetition_penalty
                                          : s[size_t(id)] / p.repetition_penalty;
    for (double& x : s) x /= p.temperature;
    if (p.top_k > 0 && size_t(p.top_k) < v) {
        std::vector<double> sorted = s;
        std::sort(sorted.rbegin(), sorted.rend());
        const double kth = sorted[size_t(p.top_k) - 1];
        for (double& x : s)
            if (x < kth) x = -INFINITY;
    }
    const double mx = *std::max_element(s.begin(), s.end());
    std::vector<double> prob(v);
    for (size_t i = 0; i < v; ++i) prob[i] = std::exp(s[i] - mx);
    auto normalise = [&] {
        const double sum = std::accumulate(prob.begin(), prob.end(), 0.0);
        for (double& x : prob) x /= sum;
    };
    normalise();
    if (p.top_p < 1.0f) {
        std::vector<size_t> order(v);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(),
                         [&](size_t a, size_t b) { return prob[a] > prob[b]; });
        double cum = 0.0;
        size_t keep = v;
        for (size_t j = 0; j < v; ++j) {
            cum += prob[order[j]];
            if (std::abs(cum - p.top_p) < 1e-4) return std::nullopt;
            if (cum >= p.top_p) {
                keep = j + 1;
                break;
            }
        }
        for (size_t j = keep; j < v; ++j) prob[order[j]] = 0.0;
        normalise();
    }
    if (p.min_p > 0.0f) {
        const double threshold = p.min_p * *std::max_element(prob.begin(), prob.end());
        for (double& x : prob) {
            if (x > 0 && std::abs(x - threshold) < 1e-4 * threshold) return std::nullopt;
            if (x < threshold) x = 0.0;
        }
        normalise();
    }
    return prob;
}

// Draws `draws` tokens and checks every token's frequency against `expected`: tokens with
// probability 0 must never appear, the others within 5 standard deviations.
void check_frequencies(Sampler& sampler, const std::vector<float>& logits,
                       const std::vector<int32_t>& history, const std::vector<double>& expected,
                       int draws, const QByteArray& context) {
    std::vector<int> counts(logits.size(), 0);
    for (int i = 0; i < draws; ++i) {
        const int32_t id = sampler.sample(logits, history);
        QVERIFY2(id >= 0 && size_t(id) < logits.size(), context);
        ++counts[size_t(id)];
    }
    for (size_t i = 0; i < logits.size(); ++i) {
        const double p = expected[i];
        const double freq = double(counts[i]) / draws;
        const QByteArray where = context + " token " + QByteArray::number(qulonglong(i)) +
                                 " expected p=" + QByteArray::number(p, 'g', 6) +
                                 " got freq=" + QByteArray::number(freq, 'g', 6);
        if (p == 0.0) {
            QVERIFY2(counts[i] == 0, where);
        } else {
            // In counts: 5 sigma of the binomial, plus 3 because for tiny p (mean count << 1)
            // the normal approximation fails and one or two hits are not evidence of a bug.
            const double mean = p * draws;
            const double sigma = std::sqrt(mean * (1.0 - p));
            QVERIFY2(std::abs(counts[i] - mean) <= 5.0 * sigma + 3.0, where);
        }
    }
}

std::vector<float> log_probs(std::initializer_list<double> probs) {
    std::vector<float> out;
    for (double p : probs) out.push_back(float(std::log(p)));
    return out;
}

SamplingParams make_params(float temperature, int top_k, float top_p, float min_p,
                           float penalty = 1.0f, uint64_t seed = 12345) {
    SamplingParams p;
    p.temperature = temperature;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.repetition_penalty = penalty;
    p.seed = seed;
    return p;
}

}  // namespace

class TestSampler : public QObject {
    Q_OBJECT

  private slots:
    void invalidParamsThrow_data();
    void invalidParamsThrow();
    void defaultsAreValid();
    void greedyPicksArgmaxLowestIndexOnTies();
    void greedySkipsNaN();
    void allMaskedThrows();
    void repetitionPenaltyMatchesHf();
    void repetitionPenaltySteersGreedy();
    void sameSeedSameSequence();
    void randomSeedIsReported();
    void topK1EqualsGreedy();
    void tinyTopPKeepsOne();
    void nanNeverSampled();
    void handComputedDistributions_data();
    void handComputedDistributions();
    void randomDistributions_data();
    void randomDistributions();
};

void TestSampler::invalidParamsThrow_data() {
    QTest::addColumn<float>("temperature");
    QTest::addColumn<int>("top_k");
    QTest::addColumn<float>("top_p");
    QTest::addColumn<float>("min_p");
    QTest::addColumn<float>("penalty");
    QTest::newRow("negative temperature") << -0.1f << 0 << 1.0f << 0.0f << 1.0f;
    QTest::newRow("NaN temperature") << kNaN << 0 << 1.0f << 0.0f << 1.0f;
    QTest::newRow("inf temperature") << kInf << 0 << 1.0f << 0.0f << 1.0f;
    QTest::newRow("negative top_k") << 1.0f << -1 << 1.0f << 0.0f << 1.0f;
    QTest::newRow("top_p 0") << 1.0f << 0 << 0.0f << 0.0f << 1.0f;
    QTest::newRow("top_p > 1") << 1.0f << 0 << 1.01f << 0.0f << 1.0f;
    QTest::newRow("top_p NaN") << 1.0f << 0 << kNaN << 0.0f << 1.0f;
    QTest::newRow("min_p negative") << 1.0f << 0 << 1.0f << -0.01f << 1.0f;
    QTest::newRow("min_p 1") << 1.0f << 0 << 1.0f << 1.0f << 1.0f;
    QTest::newRow("penalty 0") << 1.0f << 0 << 1.0f << 0.0f << 0.0f;
    QTest::newRow("penalty negative") << 1.0f << 0 << 1.0f << 0.0f << -1.0f;
    QTest::newRow("penalty NaN") << 1.0f << 0 << 1.0f << 0.0f << kNaN;
}

void TestSampler::invalidParamsThrow() {
    QFETCH(float, temperature);
    QFETCH(int, top_k);
    QFETCH(float, top_p);
    QFETCH(float, min_p);
    QFETCH(float, penalty);
    const SamplingParams p = make_params(temperature, top_k, top_p, min_p, penalty);
    QVERIFY_THROWS_EXCEPTION(moe::Error, p.validate());
    QVERIFY_THROWS_EXCEPTION(moe::Error, Sampler{p});
}

void TestSampler::defaultsAreValid() {
    SamplingParams{}.validate();
    make_params(0.0f, 5, 0.01f, 0.99f, 0.5f).validate();  // the edges of each range
    make_params(1.0f, 0, 1.0f, 0.0f, 1.0f).validate();
}

void TestSampler::greedyPicksArgmaxLowestIndexOnTies() {
    SamplingParams p;
    p.greedy = true;
    p.temperature = 0.7f;  // ignored when greedy
    p.top_k = 3;
    Sampler sampler(p);
    QCOMPARE(sampler.sample(std::vector<float>{1.0f, 5.0f, 5.0f, 2.0f}), 1);
    QCOMPARE(sampler.sample(std::vector<float>{-3.0f, -1.0f, -2.0f}), 1);
    QCOMPARE(sampler.sample(std::vector<float>{7.0f}), 0);
    QCOMPARE(sampler.sample(std::vector<float>{0.0f, 0.0f, 0.0f}), 0);

    // temperature == 0 means greedy too.
    Sampler zero_t(make_params(0.0f, 0, 1.0f, 0.0f));
    std::mt19937 gen(std::random_device{}());
    std::normal_distribution<float> normal(0.0f, 3.0f);
    for (int trial = 0; trial < 20; ++trial) {
        std::vector<float> logits(1000);
        for (float& x : logits) x = normal(gen);
        const auto best = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
        QCOMPARE(sampler.sample(logits), best);
        QCOMPARE(zero_t.sample(logits), best);
    }
}

void TestSampler::greedySkipsNaN() {
    SamplingParams p;
    p.greedy = true;
    Sampler sampler(p);
    QCOMPARE(sampler.sample(std::vector<float>{kNaN, 1.0f, kNaN, 0.5f}), 1);
    QCOMPARE(sampler.sample(std::vector<float>{-kInf, kNaN, -5.0f}), 2);
}

void TestSampler::allMaskedThrows() {
    SamplingParams greedy;
    greedy.greedy = true;
    Sampler g(greedy), s(make_params(1.0f, 0, 1.0f, 0.0f));
    const std::vector<float> nans{kNaN, kNaN, kNaN};
    const std::vector<float> masked{-kInf, kNaN, -kInf};
    QVERIFY_THROWS_EXCEPTION(moe::Error, g.sample(nans));
    QVERIFY_THROWS_EXCEPTION(moe::Error, s.sample(nans));
    QVERIFY_THROWS_EXCEPTION(moe::Error, g.sample(masked));
    QVERIFY_THROWS_EXCEPTION(moe::Error, s.sample(masked));
    QVERIFY_THROWS_EXCEPTION(moe::Error, s.sample(std::vector<float>{}));
}

void TestSampler::repetitionPenaltyMatchesHf() {
    // HF: score < 0 ? score * penalty : score / penalty, once per distinct id; out-of-range ids
    // are ignored here.
    std::vector<float> logits{2.0f, -1.0f, 0.5f, 3.0f, 4.0f, 0.0f};
    const std::vector<int32_t> history{0, 1, 1, 4, 4, 4, 5, 99, -3};
    moe::apply_repetition_penalty(logits, history, 2.0f);
    const std::vector<float> expected{1.0f, -2.0f, 0.5f, 3.0f, 2.0f, 0.0f};
    QCOMPARE(logits, expected);

    // A penalty < 1 rewards repeats the same way.
    std::vector<float> reward{2.0f, -1.0f};
    moe::apply_repetition_penalty(reward, std::vector<int32_t>{0, 1}, 0.5f);
    QCOMPARE(reward, (std::vector<float>{4.0f, -0.5f}));
}

void TestSampler::repetitionPenaltySteersGreedy() {
    SamplingParams p;
    p.greedy = true;
    p.repetition_penalty = 2.0f;
    Sampler sampler(p);
    const std::vector<int32_t> seen0{0};
    QCOMPARE(sampler.sample(std::vector<float>{3.0f, 2.0f}, {}), 0);
    QCOMPARE(sampler.sample(std::vector<float>{3.0f, 2.0f}, seen0), 1);    // 1.5 < 2
    QCOMPARE(sampler.sample(std::vector<float>{-1.0f, -1.5f}, seen0), 1);  // -2 < -1.5
    // Penalised once, not per occurrence: 3 / 2 = 1.5 still beats 1.4.
    QCOMPARE(sampler.sample(std::vector<float>{3.0f, 1.4f}, std::vector<int32_t>{0, 0, 0}), 0);
}

void TestSampler::sameSeedSameSequence() {
    std::mt19937 gen(std::random_device{}());
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<std::vector<float>> steps(300, std::vector<float>(64));
    for (auto& l : steps)
        for (float& x : l) x = normal(gen);

    const auto run = [&](uint64_t seed) {
        Sampler s(make_params(1.2f, 40, 0.95f, 0.01f, 1.1f, seed));
        std::vector<int32_t> out;
        for (const auto& l : steps) out.push_back(s.sample(l, out));
        return out;
    };
    const auto a = run(42), b = run(42), c = run(43);
    QCOMPARE(a, b);
    QVERIFY(a != c);
}

void TestSampler::randomSeedIsReported() {
    Sampler fixed(make_params(1.0f, 0, 1.0f, 0.0f, 1.0f, 777));
    QCOMPARE(fixed.seed(), uint64_t(777));
    Sampler random(make_params(1.0f, 0, 1.0f, 0.0f, 1.0f, 0));
    QVERIFY(random.seed() != 0);
    // Re-seeding with the reported seed reproduces the run.
    Sampler replay(make_params(1.0f, 0, 1.0f, 0.0f, 1.0f, random.seed()));
    const std::vector<float> flat(1000, 0.0f);
    for (int i = 0; i < 50; ++i) QCOMPARE(replay.sample(flat), random.sample(flat));
}

void TestSampler::topK1EqualsGreedy() {
    std::mt19937 gen(std::random_device{}());
    std::normal_distribution<float> normal(0.0f, 0.5f);  // small spread: argmax not dominant
    Sampler sampler(make_params(3.0f, 1, 1.0f, 0.0f));
    for (int trial = 0; trial < 200; ++trial) {
        std::vector<float> logits(512);
        for (float& x : logits) x = normal(gen);
        const auto best = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
        QCOMPARE(sampler.sample(logits), best);
    }
}

void TestSampler::tinyTopPKeepsOne() {
    std::mt19937 gen(std::random_device{}());
    std::normal_distribution<float> normal(0.0f, 0.1f);
    Sampler sampler(make_params(1.0f, 0, 1e-6f, 0.0f));
    for (int trial = 0; trial < 100; ++trial) {
        std::vector<float> logits(2000);
        for (float& x : logits) x = normal(gen);
        const auto best = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
        QCOMPARE(sampler.sample(logits), best);
    }
}

void TestSampler::nanNeverSampled() {
    Sampler sampler(make_params(1.0f, 0, 1.0f, 0.0f));
    const std::vector<float> logits{kNaN, 0.0f, kNaN, 0.0f, -kInf};
    int seen1 = 0;
    for (int i = 0; i < 2000; ++i) {
        const int32_t id = sampler.sample(logits);
        QVERIFY(id == 1 || id == 3);
        seen1 += id == 1;
    }
    QVERIFY(seen1 > 800 && seen1 < 1200);
}

void TestSampler::handComputedDistributions_data() {
    QTest::addColumn<std::vector<float>>("logits");
    QTest::addColumn<float>("temperature");
    QTest::addColumn<int>("top_k");
    QTest::addColumn<float>("top_p");
    QTest::addColumn<float>("min_p");
    QTest::addColumn<std::vector<double>>("expected");
    const auto base = log_probs({0.5, 0.3, 0.15, 0.05});
    const double s2 = std::sqrt(0.5) + std::sqrt(0.3) + std::sqrt(0.15) + std::sqrt(0.05);
    QTest::newRow("plain") << base << 1.0f << 0 << 1.0f << 0.0f
                           << std::vector<double>{0.5, 0.3, 0.15, 0.05};
    QTest::newRow("temperature 2")
        << base << 2.0f << 0 << 1.0f << 0.0f
        << std::vector<double>{std::sqrt(0.5) / s2, std::sqrt(0.3) / s2, std::sqrt(0.15) / s2,
                               std::sqrt(0.05) / s2};
    QTest::newRow("top-k 3") << base << 1.0f << 3 << 1.0f << 0.0f
                             << std::vector<double>{0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0};
    QTest::newRow("top-p 0.75") << base << 1.0f << 0 << 0.75f << 0.0f
                                << std::vector<double>{0.625, 0.375, 0.0, 0.0};
    QTest::newRow("top-p 0.85") << base << 1.0f << 0 << 0.85f << 0.0f
                                << std::vector<double>{0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0};
    QTest::newRow("min-p 0.35") << base << 1.0f << 0 << 1.0f << 0.35f
                                << std::vector<double>{0.625, 0.375, 0.0, 0.0};
    // top-k 2 then min-p 0.7 of the renormalised {0.625, 0.375}: 0.375 < 0.4375 goes.
    QTest::newRow("top-k 2 + min-p 0.7")
        << base << 1.0f << 2 << 1.0f << 0.7f << std::vector<double>{1.0, 0.0, 0.0, 0.0};
    // HF keeps every token tied with the k-th score.
    QTest::newRow("top-k ties") << std::vector<float>{1.0f, 2.0f, 2.0f, 2.0f} << 1.0f << 2 << 1.0f
                                << 0.0f << std::vector<double>{0.0, 1.0 / 3, 1.0 / 3, 1.0 / 3};
}

void TestSampler::handComputedDistributions() {
    QFETCH(std::vector<float>, logits);
    QFETCH(float, temperature);
    QFETCH(int, top_k);
    QFETCH(float, top_p);
    QFETCH(float, min_p);
    QFETCH(std::vector<double>, expected);
    const SamplingParams p = make_params(temperature, top_k, top_p, min_p);

    // The reference used by randomDistributions must agree with the hand computation...
    const auto ref = reference_distribution(logits, {}, p);
    QVERIFY(ref.has_value());
    for (size_t i = 0; i < expected.size(); ++i) QVERIFY(std::abs((*ref)[i] - expected[i]) < 1e-6);
    // ...and so must the sampler.
    Sampler sampler(p);
    check_frequencies(sampler, logits, {}, expected, 100000, QTest::currentDataTag());
}

void TestSampler::randomDistributions_data() {
    QTest::addColumn<int>("vocab");
    QTest::addColumn<float>("spread");  // std-dev of the random logits
    QTest::addColumn<float>("temperature");
    QTest::addColumn<int>("top_k");
    QTest::addColumn<float>("top_p");
    QTest::addColumn<float>("min_p");
    QTest::addColumn<float>("penalty");
    QTest::newRow("temperature 1") << 32 << 2.0f << 1.0f << 0 << 1.0f << 0.0f << 1.0f;
    QTest::newRow("temperature 0.5") << 32 << 2.0f << 0.5f << 0 << 1.0f << 0.0f << 1.0f;
    QTest::newRow("temperature 2.5") << 32 << 2.0f << 2.5f << 0 << 1.0f << 0.0f << 1.0f;
    QTest::newRow("top-k 5") << 32 << 2.0f << 1.0f << 5 << 1.0f << 0.0f << 1.0f;
    QTest::newRow("top-k 5, T 0.7") << 32 << 2.0f << 0.7f << 5 << 1.0f << 0.0f << 1.0f;
    QTest::newRow("top-p 0.8") << 32 << 2.0f << 1.0f << 0 << 0.8f << 0.0f << 1.0f;
    QTest::newRow("top-p 0.5, T 1.5") << 32 << 2.0f << 1.5f << 0 << 0.5f << 0.0f << 1.0f;
    // A flat distribution puts hundreds of tokens in the nucleus (beyond the sampler's first
    // partially sorted block).
    QTest::newRow("top-p 0.7, wide nucleus") << 400 << 0.3f << 1.0f << 0 << 0.7f << 0.0f << 1.0f;
    QTest::newRow("min-p 0.1") << 32 << 2.0f << 1.0f << 0 << 1.0f << 0.1f << 1.0f;
    QTest::newRow("min-p 0.3, T 2") << 32 << 2.0f << 2.0f << 0 << 1.0f << 0.3f << 1.0f;
    QTest::newRow("penalty 1.5") << 32 << 2.0f << 1.0f << 0 << 1.0f << 0.0f << 1.5f;
    QTest::newRow("all processors") << 32 << 2.0f << 0.8f << 12 << 0.9f << 0.05f << 1.3f;
}

void TestSampler::randomDistributions() {
    QFETCH(int, vocab);
    QFETCH(float, spread);
    QFETCH(float, temperature);
    QFETCH(int, top_k);
    QFETCH(float, top_p);
    QFETCH(float, min_p);
    QFETCH(float, penalty);
    const SamplingParams p = make_params(temperature, top_k, top_p, min_p, penalty);

    // Fresh logits every run (the seed is printed on failure); a fixed sampler seed keeps a
    // given set of logits deterministic.
    const unsigned logits_seed = std::random_device{}();
    std::mt19937 gen(logits_seed);
    std::normal_distribution<float> normal(0.0f, spread);
    std::uniform_int_distribution<int32_t> any_token(0, vocab - 1);
    std::vector<float> logits(static_cast<size_t>(vocab));
    std::vector<int32_t> history;
    std::optional<std::vector<double>> expected;
    do {
        for (float& x : logits) x = normal(gen);
        history.clear();
        for (int i = 0; i < 6; ++i) history.push_back(any_token(gen));
        expected = reference_distribution(logits, history, p);
    } while (!expected);

    Sampler sampler(p);
    const QByteArray context = QByteArray(QTest::currentDataTag()) + " (logits seed " +
                               QByteArray::number(logits_seed) + ")";
    check_frequencies(sampler, logits, history, *expected, vocab > 100 ? 400000 : 100000, context);
}

QTEST_APPLESS_MAIN(TestSampler)
#include "tst_sampler.moc"
