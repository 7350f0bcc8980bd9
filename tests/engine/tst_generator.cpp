// generate(): prefill chunking, the decode loop, stop ids, cancellation, cache continuation
// and stats, against a tiny fake model whose next token is predictable.
#include <QObject>
#include <QTest>

#include <atomic>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "model/generator.h"

using moe::GenerateRequest;
using moe::GenerateResult;
using moe::KvCache;
using moe::StopReason;

namespace {

// Logits make (last token + 1) % vocab the clear argmax, so greedy output counts upwards. In
// `fixed` mode it returns the same logits every step instead (for repetition-penalty tests).
class FakeModel : public moe::Model {
  public:
    struct Call {
        std::vector<int32_t> tokens;
        int64_t position;  // cache.size() when called
        bool all_positions;
    };

    explicit FakeModel(int32_t vocab) : vocab_(vocab) { info_.vocab_size = vocab; }

    const moe::ModelInfo& info() const override { return info_; }
    KvCache new_cache() const override { return KvCache{}; }

    void forward(std::span<const int32_t> tokens, KvCache& cache, std::vector<float>& logits,
                 bool all_positions) override {
        calls.push_back(
            {std::vector<int32_t>(tokens.begin(), tokens.end()), cache.size(), all_positions});
        cache.advance(int64_t(tokens.size()));
        const size_t rows = all_positions ? tokens.size() : 1;
        logits.assign(rows * size_t(vocab_), 0.0f);
        if (!fixed.empty()) {
            for (size_t r = 0; r < rows; ++r)
                std::copy(fixed.begin(), fixed.end(), logits.begin() + ptrdiff_t(r * vocab_));
            return;
        }
        for (size_t r = 0; r < rows; ++r) {
            const int32_t t = all_positions ? tokens[r] : tokens.back();
            logits[r * size_t(vocab_) + size_t((t + 1) % vocab_)] = 10.0f;
        }
    }

    std::vector<Call> calls;
    std::vector<float> fixed;

  private:
    int32_t vocab_;
    moe::ModelInfo info_;
};

GenerateRequest greedy_request(std::vector<int32_t> prompt, int max_new_tokens) {
    GenerateRequest req;
    req.prompt = std::move(prompt);
    req.max_new_tokens = max_new_tokens;
    req.sampling.greedy = true;
    return req;
}

}  // namespace

class TestGenerator : public QObject {
    Q_OBJECT

  private slots:
    void greedySequence();
    void prefillIsChunked();
    void zeroNewTokensOnlyPrefills();
    void eosStopsAndIsNotEmitted();
    void callbackFalseCancels();
    void cancelFlag();
    void cancelFlagBeforeStart();
    void continuesCachedPrefix();
    void invalidRequestsThrow();
    void repetitionPenaltySeesPromptAndOutput();
    void sampledGenerationIsSeeded();
    void stats();
};

void TestGenerator::greedySequence() {
    FakeModel model(16);
    KvCache cache = model.new_cache();
    std::vector<int32_t> streamed;
    const GenerateResult r =
        moe::generate(model, cache, greedy_request({3, 4, 5}, 6), [&](int32_t t) {
            streamed.push_back(t);
            return true;
        });
    const std::vector<int32_t> expected{6, 7, 8, 9, 10, 11};
    QCOMPARE(r.tokens, expected);
    QCOMPARE(streamed, expected);
    QCOMPARE(r.reason, StopReason::Length);

    // One prefill call, then one single-token call per token except the last (never fed).
    QCOMPARE(model.calls.size(), size_t(6));
    QCOMPARE(model.calls[0].tokens, (std::vector<int32_t>{3, 4, 5}));
    QCOMPARE(model.calls[0].position, int64_t(0));
    for (size_t i = 1; i < model.calls.size(); ++i) {
        QCOMPARE(model.calls[i].tokens, std::vector<int32_t>{expected[i - 1]});
        QCOMPARE(model.calls[i].position, int64_t(3 + i - 1));
        QVERIFY(!model.calls[i].all_positions);
    }
    QCOMPARE(cache.size(), int64_t(3 + 5));

    // Wrap-around at the vocabulary end.
    FakeModel small(4);
    KvCache c2;
    QCOMPARE(moe::generate(small, c2, greedy_request({2}, 5)).tokens,
             (std::vector<int32_t>{3, 0, 1, 2, 3}));
}

void TestGenerator::prefillIsChunked() {
    FakeModel model(50);
    KvCache cache;
    std::vector<int32_t> prompt(1200);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t(i % 50);
    GenerateRequest req = greedy_request(prompt, 2);
    const GenerateResult r = moe::generate(model, cache, req);
    QCOMPARE(r.tokens, (std::vector<int32_t>{(1199 % 50 + 1) % 50, (1199 % 50 + 2) % 50}));
    QCOMPARE(model.calls.size(), size_t(4));  // 512 + 512 + 176, then one decode step
    QCOMPARE(model.calls[0].tokens.size(), size_t(512));
    QCOMPARE(model.calls[1].tokens.size(), size_t(512));
    QCOMPARE(model.calls[2].tokens.size(), size_t(176));
    QCOMPARE(model.calls[1].position, int64_t(512));
    QCOMPARE(model.calls[2].position, int64_t(1024));
    QCOMPARE(model.calls[2].tokens.front(), prompt[1024]);
    for (const auto& c : model.calls) QVERIFY(!c.all_positions);

    FakeModel m2(50);
    KvCache c2;
    req.prefill_chunk = 100;
    moe::generate(m2, c2, req);
    QCOMPARE(m2.calls.size(), size_t(12 + 1));
}

void TestGenerator::zeroNewTokensOnlyPrefills() {
    FakeModel model(16);
    KvCache cache;
    bool called = false;
    const GenerateResult r = moe::generate(model, cache, greedy_request({1, 2}, 0), [&](int32_t) {
        called = true;
        return true;
    });
    QVERIFY(r.tokens.empty());
    QVERIFY(!called);
    QCOMPARE(r.reason, StopReason::Length);
    QCOMPARE(cache.size(), int64_t(2));
}

void TestGenerator::eosStopsAndIsNotEmitted() {
    FakeModel model(16);
    KvCache cache;
    GenerateRequest req = greedy_request({5}, 100);
    req.stop_ids = {13, 9};
    std::vector<int32_t> streamed;
    const GenerateResult r = moe::generate(model, cache, req, [&](int32_t t) {
        streamed.push_back(t);
        return true;
    });
    QCOMPARE(r.tokens, (std::vector<int32_t>{6, 7, 8}));
    QCOMPARE(streamed, r.tokens);
    QCOMPARE(r.reason, StopReason::Eos);
    QCOMPARE(r.stats.generated_tokens, int64_t(3));
    QCOMPARE(cache.size(), int64_t(1 + 3));  // every returned token is cached, EOS is not

    // EOS as the very first token.
    FakeModel m2(16);
    KvCache c2;
    req.stop_ids = {6};
    const GenerateResult r2 = moe::generate(m2, c2, req);
    QVERIFY(r2.tokens.empty());
    QCOMPARE(r2.reason, StopReason::Eos);
}

void TestGenerator::callbackFalseCancels() {
    FakeModel model(16);
    KvCache cache;
    std::vector<int32_t> streamed;
    const GenerateResult r = moe::generate(model, cache, greedy_request({5}, 100), [&](int32_t t) {
        streamed.push_back(t);
        return t != 8;
    });
    QCOMPARE(r.tokens, (std::vector<int32_t>{6, 7, 8}));
    QCOMPARE(streamed, r.tokens);
    QCOMPARE(r.reason, StopReason::Cancelled);
    QCOMPARE(model.calls.size(), size_t(3));  // prefill + feeding 6 and 7; 8 is never fed
}

void TestGenerator::cancelFlag() {
    FakeModel model(16);
    KvCache cache;
    std::atomic<bool> cancel{false};
    const GenerateResult r = moe::generate(
        model, cache, greedy_request({5}, 100),
        [&](int32_t t) {
            if (t == 7) cancel = true;  // as if another thread pressed "stop" now
            return true;
        },
        &cancel);
    QCOMPARE(r.tokens, (std::vector<int32_t>{6, 7}));
    QCOMPARE(r.reason, StopReason::Cancelled);
    QCOMPARE(model.calls.size(), size_t(2));
}

void TestGenerator::cancelFlagBeforeStart() {
    FakeModel model(16);
    KvCache cache;
    std::atomic<bool> cancel{true};
    bool called = false;
    const GenerateResult r = moe::generate(
        model, cache, greedy_request({5, 6}, 100),
        [&](int32_t) {
            called = true;
            return true;
        },
        &cancel);
    QVERIFY(r.tokens.empty());
    QVERIFY(!called);
    QCOMPARE(r.reason, StopReason::Cancelled);
    QVERIFY(model.calls.empty());
    QCOMPARE(cache.size(), int64_t(0));
}

void TestGenerator::continuesCachedPrefix() {
    FakeModel model(32);
    KvCache cache;
    std::vector<float> logits;
    const std::vector<int32_t> prefix{1, 2, 3, 4};
    model.forward(prefix, cache, logits, false);
    model.calls.clear();

    const GenerateResult r = moe::generate(model, cache, greedy_request({20, 21}, 3));
    QCOMPARE(r.tokens, (std::vector<int32_t>{22, 23, 24}));
    QCOMPARE(model.calls[0].tokens, (std::vector<int32_t>{20, 21}));
    QCOMPARE(model.calls[0].position, int64_t(4));
    QCOMPARE(r.stats.prompt_tokens, int64_t(2));
    QCOMPARE(cache.size(), int64_t(4 + 2 + 2));

    // Continue the same cache with the token it is missing, as the header documents.
    const GenerateResult r2 = moe::generate(model, cache, greedy_request({r.tokens.back()}, 2));
    QCOMPARE(r2.tokens, (std::vector<int32_t>{25, 26}));
    QCOMPARE(model.calls[3].position, int64_t(8));
}

void TestGenerator::invalidRequestsThrow() {
    FakeModel model(16);
    KvCache cache;
    QVERIFY_THROWS_EXCEPTION(moe::Error, moe::generate(model, cache, greedy_request({}, 4)));
    std::vector<float> logits;
    model.forward(std::vector<int32_t>{1, 2}, cache, logits, false);
    QVERIFY_THROWS_EXCEPTION(moe::Error, moe::generate(model, cache, greedy_request({}, 4)));
    QVERIFY_THROWS_EXCEPTION(moe::Error, moe::generate(model, cache, greedy_request({3}, -1)));
    GenerateRequest bad = greedy_request({3}, 4);
    bad.sampling.top_p = 0.0f;
    QVERIFY_THROWS_EXCEPTION(moe::Error, moe::generate(model, cache, bad));
    bad = greedy_request({3}, 4);
    bad.prefill_chunk = 0;
    QVERIFY_THROWS_EXCEPTION(moe::Error, moe::generate(model, cache, bad));
    // Nothing was run for the rejected requests.
    QCOMPARE(model.calls.size(), size_t(1));
    QCOMPARE(cache.size(), int64_t(2));
}

void TestGenerator::repetitionPenaltySeesPromptAndOutput() {
    FakeModel model(4);
    model.fixed = {2.0f, 1.5f, 0.0f, 0.0f};
    GenerateRequest req = greedy_request({0}, 4);

    KvCache c1;
    req.sampling.repetition_penalty = 1.0f;
    QCOMPARE(moe::generate(model, c1, req).tokens, (std::vector<int32_t>{0, 0, 0, 0}));

    // Prompt token 0 is penalised (2 -> 1), so 1 wins; then 1 is penalised too (1.5 -> 0.75)
    // and 0 wins again, staying penalised once however often it repeats.
    KvCache c2;
    req.sampling.repetition_penalty = 2.0f;
    QCOMPARE(moe::generate(model, c2, req).tokens, (std::vector<int32_t>{1, 0, 0, 0}));
}

void TestGenerator::sampledGenerationIsSeeded() {
    FakeModel model(64);
    model.fixed.assign(64, 0.0f);  // uniform: every token possible
    GenerateRequest req;
    req.prompt = {1};
    req.max_new_tokens = 40;
    req.sampling.seed = 99;
    KvCache c1, c2, c3;
    const auto a = moe::generate(model, c1, req).tokens;
    const auto b = moe::generate(model, c2, req).tokens;
    req.sampling.seed = 100;
    const auto c = moe::generate(model, c3, req).tokens;
    QCOMPARE(a.size(), size_t(40));
    QCOMPARE(a, b);
    QVERIFY(a != c);
}

void TestGenerator::stats() {
    FakeModel model(16);
    KvCache cache;
    GenerateRequest req = greedy_request({1, 2, 3, 4, 5}, 7);
    req.prefill_chunk = 2;
    const GenerateResult r = moe::generate(model, cache, req);
    const moe::GenerateStats& s = r.stats;
    QCOMPARE(s.prompt_tokens, int64_t(5));
    QCOMPARE(s.generated_tokens, int64_t(7));
    QVERIFY(s.prompt_seconds >= 0.0);
    QVERIFY(s.generate_seconds >= 0.0);
    QVERIFY(s.time_to_first_token >= s.prompt_seconds);
    QVERIFY(s.time_to_first_token <= s.prompt_seconds + s.generate_seconds);
    QVERIFY(std::isfinite(s.prompt_tokens_per_second()) && s.prompt_tokens_per_second() >= 0);
    QVERIFY(std::isfinite(s.generate_tokens_per_second()) && s.generate_tokens_per_second() >= 0);

    // The rates are count / seconds, and 0 (not inf or NaN) for an unmeasurable duration.
    moe::GenerateStats fixed;
    fixed.prompt_tokens = 100;
    fixed.prompt_seconds = 0.5;
    fixed.generated_tokens = 30;
    fixed.generate_seconds = 3.0;
    QCOMPARE(fixed.prompt_tokens_per_second(), 200.0);
    QCOMPARE(fixed.generate_tokens_per_second(), 10.0);
    fixed.prompt_seconds = fixed.generate_seconds = 0.0;
    QCOMPARE(fixed.prompt_tokens_per_second(), 0.0);
    QCOMPARE(fixed.generate_tokens_per_second(), 0.0);
}

QTEST_APPLESS_MAIN(TestGenerator)
#include "tst_generator.moc"
