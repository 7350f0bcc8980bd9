// The OpenAI-compatible server in process: request parsing and OpenAI's error bodies, stop
// strings, the batched decode step (batched logits equal per-sequence logits), the continuous
// batching scheduler (greedy answers equal generate()'s, usage equals the tokenizer's counts,
// a full queue refuses with 429), and the HTTP front over a real socket (API key, 404, 400,
// 413, streaming SSE, /metrics, 503 while shutting down).
//
// The model is tests/data/hf-tiny/qwen3_moe-s1 (and deepseek_v3-s1 for MLA attention) with a
// byte-level tokenizer written here: the fixtures have no tokenizer of their own.
#include <QObject>
#include <QTemporaryDir>
#include <QTest>

#include <httplib.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/remote_chat.h"
#include "core/error.h"
#include "model/generator.h"
#include "model/model.h"
#include "model/model_tokenizer.h"
#include "server/api_error.h"
#include "server/http_server.h"
#include "server/openai_protocol.h"
#include "server/scheduler.h"
#include "server/served_model.h"
#include "server/stop_strings.h"
#include "test_paths.h"
#include "tokenizer/byte_level_files.h"

namespace fs = std::filesystem;

// QCOMPARE has no overload for nlohmann::json (its conversions are ambiguous there): compare
// the serialised values, which also prints them on failure.
#define QCOMPARE_JSON(a, b) QCOMPARE(nlohmann::json(a).dump(), nlohmann::json(b).dump())
using nlohmann::json;
using namespace moe::server;

namespace {

constexpr int kEos = 258;  // <|im_end|>

void write_json(const fs::path& p, const json& j) {
    std::ofstream(p) << j.dump(1);
}

// A model folder over an hf-tiny fixture: its config (with an EOS id) and weights, and a
// byte-level tokenizer covering the fixture's vocabulary: 256 bytes, 3 ChatML specials, then
// plain tokens "t259", "t260", ... that encoding never produces but generation may.
void make_model_folder(const fs::path& fixture, const fs::path& dir) {
    json config = json::parse(std::ifstream(fixture / "config.json"));
    const int vocab = config["vocab_size"].get<int>();
    config["eos_token_id"] = kEos;
    write_json(dir / "config.json", config);
    fs::create_symlink(fixture / "model.safetensors", dir / "model.safetensors");
    moe::write_byte_level_tokenizer(
        dir.string(), {{"<|endoftext|>", "<|im_start|>", "<|im_end|>"}, vocab, "<|im_end|>"});
}

json chat_body(const std::string& model, const std::string& user, int max_tokens) {
    return {{"model", model},
            {"messages", json::array({{{"role", "user"}, {"content", user}}})},
            {"temperature", 0},
            {"max_tokens", max_tokens}};
}

struct Answer {
    std::string text;
    FinishReason finish = FinishReason::Length;
    Usage usage;
    bool error = false;
    ApiError api_error;
};

// Drains a request's events (bounded: a hung scheduler fails the test instead of hanging it).
Answer collect(RequestStream& s) {
    Answer a;
    StreamEvent e;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < until) {
        if (!s.next(e, std::chrono::milliseconds(200))) continue;
        if (e.kind == StreamEvent::Kind::Text) {
            a.text += e.text;
        } else if (e.kind == StreamEvent::Kind::Done) {
            a.finish = e.finish;
            a.usage = e.usage;
            return a;
        } else {
            a.error = true;
            a.api_error = e.error;
            return a;
        }
    }
    a.error = true;
    a.api_error.message = "timed out";
    return a;
}

}  // namespace

class TestServer : public QObject {
    Q_OBJECT

  private slots:
    void initTestCase();
    void errorJsonShape();
    void parsesRequests();
    void rejectsBadRequests();
    void stopStringMatcher();
    void batchedLogitsEqualSingle_data();
    void batchedLogitsEqualSingle();
    void schedulerMatchesGenerate();
    void stopStringsEndAnswers();
    void seededSamplingRepeats();
    void cancelledRequestsLeave();
    void contextLimits();
    void queueFullRefuses();
    void hostPolicy();
    void httpEndToEnd();
    void remoteChatClient();

  private:
    std::unique_ptr<moe::Model> load(const char* fixture_name, QTemporaryDir& dir);
    // generate()'s greedy answer to `job` on a fresh cache: (text, tokens).
    std::pair<std::string, int64_t> reference(const GenerationJob& job);

    QTemporaryDir dir_;
    std::string model_dir_;
    std::unique_ptr<moe::Model> model_;
    std::unique_ptr<moe::Tokenizer> tokenizer_;
    std::unique_ptr<ServedModel> served_;
};

std::unique_ptr<moe::Model> TestServer::load(const char* fixture_name, QTemporaryDir& dir) {
    const fs::path fixture = fs::path(moetest::data_dir().toStdString()) / "hf-tiny" / fixture_name;
    if (!fs::exists(fixture / "model.safetensors")) return nullptr;
    make_model_folder(fixture, dir.path().toStdString());
    return moe::load_model(dir.path().toStdString());
}

void TestServer::initTestCase() {
    QVERIFY(dir_.isValid());
    model_ = load("qwen3_moe-s1", dir_);
    if (!model_) QSKIP("tests/data/hf-tiny/qwen3_moe-s1 is missing");
    model_dir_ = dir_.path().toStdString();
    tokenizer_ = moe::load_model_tokenizer(model_dir_);
    moe::SamplingParams greedy;
    greedy.greedy = true;
    served_ =
        std::make_unique<ServedModel>(make_served_model(*model_, *tokenizer_, model_dir_, greedy));
    served_->name = "tiny";
    QCOMPARE(served_->add_special_tokens, false);  // the folder's chat template was found
}

void TestServer::errorJsonShape() {
    const json e = json::parse(ApiError::model_not_found("gpt-9", "tiny").to_json());
    QVERIFY(e.contains("error"));
    const json& x = e["error"];
    QCOMPARE(x["type"].get<std::string>(), std::string("invalid_request_error"));
    QCOMPARE(x["param"].get<std::string>(), std::string("model"));
    QCOMPARE(x["code"].get<std::string>(), std::string("model_not_found"));
    QVERIFY(x["message"].get<std::string>().find("gpt-9") != std::string::npos);
    // Absent param/code are null, as OpenAI sends them.
    const json q = json::parse(ApiError::queue_full("busy").to_json());
    QVERIFY(q["error"]["param"].is_null());
    QCOMPARE(ApiError::queue_full("busy").status, 429);
    QCOMPARE(error_for_status(413).status, 413);
    QVERIFY(json::parse(error_for_status(413).to_json())["error"]["message"].is_string());
}

void TestServer::parsesRequests() {
    moe::SamplingParams defaults;
    defaults.greedy = true;
    const ParsedRequest r = parse_chat_request(
        R"({"model":"tiny","messages":[{"role":"system","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"hi "},{"type":"text","text":"there"}]}],
            "stream":true,"stream_options":{"include_usage":true},"temperature":0.7,
            "top_p":0.9,"max_tokens":5,"seed":42,"stop":["\n\n","END"]})",
        defaults);
    QVERIFY(r.chat);
    QCOMPARE(r.model, std::string("tiny"));
    QCOMPARE(r.messages.size(), size_t(2));
    QCOMPARE(r.messages[1]["content"].get<std::string>(), std::string("hi there"));
    QVERIFY(r.stream);
    QVERIFY(r.include_usage);
    QVERIFY(!r.sampling.greedy);
    QCOMPARE(r.sampling.temperature, 0.7f);
    QCOMPARE(r.sampling.top_p, 0.9f);
    QCOMPARE(r.sampling.seed, uint64_t(42));
    QCOMPARE(*r.max_tokens, 5);
    QCOMPARE(r.stop, (std::vector<std::string>{"\n\n", "END"}));

    // Left out: the server's defaults; temperature 0 is greedy.
    const ParsedRequest d = parse_chat_request(
        R"({"model":"tiny","messages":[{"role":"user","content":"x"}]})", defaults);
    QVERIFY(d.sampling.greedy);
    QVERIFY(!d.max_tokens);
    QVERIFY(!d.stream);
    moe::SamplingParams sampled;
    const ParsedRequest z = parse_chat_request(
        R"({"model":"tiny","messages":[{"role":"user","content":"x"}],"temperature":0})", sampled);
    QVERIFY(z.sampling.greedy);

    const ParsedRequest c = parse_completion_request(
        R"({"model":"tiny","prompt":["once upon"],"stop":"\n","max_tokens":3})", defaults);
    QVERIFY(!c.chat);
    QCOMPARE(c.prompt, std::string("once upon"));
    QCOMPARE(c.stop, std::vector<std::string>{"\n"});
}

void TestServer::rejectsBadRequests() {
    const moe::SamplingParams defaults;
    const auto param_of = [&](const std::string& body, bool chat = true) -> std::string {
        try {
            if (chat)
                parse_chat_request(body, defaults);
            else
                parse_completion_request(body, defaults);
        } catch (const ApiException& e) {
            if (e.error().status != 400) return "status " + std::to_string(e.error().status);
            return e.error().param.empty() ? "(none)" : e.error().param;
        }
        return "accepted";
    };
    const std::string msgs = R"("messages":[{"role":"user","content":"x"}])";
    QCOMPARE(param_of("{not json"), std::string("(none)"));
    QCOMPARE(param_of("[1,2]"), std::string("(none)"));
    QCOMPARE(param_of(R"({"messages":[{"role":"user","content":"x"}]})"), std::string("model"));
    QCOMPARE(param_of(R"({"model":"tiny"})"), std::string("messages"));
    QCOMPARE(param_of(R"({"model":"tiny","messages":[]})"), std::string("messages"));
    QCOMPARE(param_of(R"({"model":"tiny","messages":[{"content":"x"}]})"),
             std::string("messages[0]"));
    QCOMPARE(param_of(R"({"model":"tiny","messages":[{"role":"wizard","content":"x"}]})"),
             std::string("messages[0].role"));
    QCOMPARE(param_of(R"({"model":"tiny",)" + msgs + R"(,"temperature":3})"),
             std::string("temperature"));
    QCOMPARE(param_of(R"({"model":"tiny",)" + msgs + R"(,"temperature":"hot"})"),
             std::string("temperature"));
    QCOMPARE(param_of(R"({"model":"tiny",)" + msgs + R"(,"top_p":0})"), std::string("top_p"));
    QCOMPARE(param_of(R"({"model":"tiny",)" + msgs + R"(,"max_tokens":0})"),
             std::string("max_tokens"));
    QCOMPARE(param_of(R"({"model":"tiny",)" + msgs + R"(,"max_tokens":1.5})"),
             std::string("max_tokens"));
    QCOMPARE(param_of(R"({"model":"tiny",)" + msgs + R"(,"stop":["a","b","c","d","e"]})"),
             std::string("stop"));
    QCOMPARE(param_of(R"({"model":"tiny",)" + msgs + R"(,"stop":[""]})"), std::string("stop"));
    QCOMPARE(param_of(R"({"model":"tiny",)" + msgs + R"(,"stop":7})"), std::string("stop"));
    QCOMPARE(param_of(R"({"model":"tiny",)" + msgs + R"(,"n":2})"), std::string("n"));
    QCOMPARE(param_of(R"({"model":"tiny",)" + msgs + R"(,"stream":"yes"})"), std::string("stream"));
    QCOMPARE(param_of(R"({"model":"tiny",)" + msgs + R"(,"frequency_penalty":0.5})"),
             std::string("frequency_penalty"));
    QCOMPARE(param_of(R"({"model":"tiny",)" + msgs + R"(,"frequency_penalty":0})"),
             std::string("accepted"));
    QCOMPARE(param_of(R"({"model":"tiny"})", false), std::string("prompt"));
    QCOMPARE(param_of(R"({"model":"tiny","prompt":[1,2]})", false), std::string("prompt"));
    QCOMPARE(param_of(R"({"model":"tiny","prompt":"x","echo":true})", false), std::string("echo"));
    // Invalid UTF-8 in a field echoed back must not break the error body.
    const ApiError e = ApiError::model_not_found("bad\xff", "tiny");
    QVERIFY(json::parse(e.to_json())["error"]["message"].is_string());
}

void TestServer::stopStringMatcher() {
    StopStringMatcher m({"END", "\n\n"});
    QCOMPARE(m.push("Hello E"), std::string("Hello "));  // "E" could start END
    QCOMPARE(m.push("N"), std::string());
    QCOMPARE(m.push("Dless"), std::string());  // "END" completed: nothing of it is released
    QVERIFY(m.stopped());
    QCOMPARE(m.push("more"), std::string());
    QCOMPARE(m.flush(), std::string());

    StopStringMatcher n({"END"});
    QCOMPARE(n.push("EN"), std::string());
    QCOMPARE(n.push("d"), std::string("ENd"));  // not a stop after all
    QCOMPARE(n.push("xyzE"), std::string("xyz"));
    QCOMPARE(n.flush(), std::string("E"));  // never completed: part of the answer
    QVERIFY(!n.stopped());

    // The earliest match wins; text before it in the same piece is released.
    StopStringMatcher o({"cd", "b"});
    QCOMPARE(o.push("abcd"), std::string("a"));
    QVERIFY(o.stopped());

    // Overlapping prefixes: "aab" inside "aaab".
    StopStringMatcher p({"aab"});
    QCOMPARE(p.push("aa"), std::string());
    QCOMPARE(p.push("a"), std::string("a"));
    QCOMPARE(p.push("b!"), std::string());
    QVERIFY(p.stopped());

    StopStringMatcher none;
    QCOMPARE(none.push("abc"), std::string("abc"));
}

void TestServer::batchedLogitsEqualSingle_data() {
    QTest::addColumn<QString>("fixture");
    QTest::newRow("qwen3_moe (GQA, routed experts)") << "qwen3_moe-s1";
    QTest::newRow("deepseek_v3 (MLA, shared experts)") << "deepseek_v3-s1";
    QTest::newRow("gpt_oss (sinks, sliding window)") << "gpt_oss-s1";
}

void TestServer::batchedLogitsEqualSingle() {
    QFETCH(QString, fixture);
    QTemporaryDir dir;
    auto model = load(fixture.toStdString().c_str(), dir);
    if (!model) QSKIP("fixture missing");
    const int64_t vocab = model->info().vocab_size;
    // Sequences of different lengths, so that every row attends over a different past.
    const std::vector<std::vector<int32_t>> prompts = {
        {1, 2, 3, 4, 5, 6, 7}, {42}, {100, 200, 300}, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 11, 12}};
    std::vector<moe::KvCache> single, batched;
    std::vector<float> logits;
    for (const auto& p : prompts) {
        single.push_back(model->new_cache());
        batched.push_back(model->new_cache());
        model->forward(p, single.back(), logits, false);
        model->forward(p, batched.back(), logits, false);
    }
    // Three decode steps: the batch's caches must advance exactly as the single ones.
    for (int step = 0; step < 3; ++step) {
        std::vector<int32_t> tokens;
        std::vector<moe::KvCache*> caches;
        for (size_t i = 0; i < prompts.size(); ++i) {
            tokens.push_back(int32_t((50 + 37 * i + 11 * size_t(step)) % size_t(vocab)));
            caches.push_back(&batched[i]);
        }
        std::vector<float> batch_logits;
        model->forward_batch(tokens, caches, batch_logits);
        QCOMPARE(batch_logits.size(), size_t(vocab) * prompts.size());
        for (size_t i = 0; i < prompts.size(); ++i) {
            std::vector<float> one;
            model->forward(std::vector<int32_t>{tokens[i]}, single[i], one, false);
            QCOMPARE(batched[i].size(), single[i].size());
            double max_diff = 0, max_abs = 0;
            for (int64_t v = 0; v < vocab; ++v) {
                max_diff = std::max(max_diff,
                                    double(std::fabs(one[size_t(v)] -
                                                     batch_logits[i * size_t(vocab) + size_t(v)])));
                max_abs = std::max(max_abs, double(std::fabs(one[size_t(v)])));
            }
            if (max_diff > 1e-4 * std::max(1.0, max_abs)) {
                QFAIL(qPrintable(QString("step %1, sequence %2: batched logits differ by %3 "
                                         "(max |logit| %4)")
                                     .arg(step)
                                     .arg(i)
                                     .arg(max_diff)
                                     .arg(max_abs)));
            }
        }
    }
    // Misuse is an error, not a corrupted cache.
    std::vector<moe::KvCache*> twice{&batched[0], &batched[0]};
    const std::vector<int32_t> two{1, 2};
    QVERIFY_THROWS_EXCEPTION(moe::Error, model->forward_batch(two, twice, logits));
    std::vector<moe::KvCache*> one_cache{&batched[0]};
    QVERIFY_THROWS_EXCEPTION(moe::Error, model->forward_batch(two, one_cache, logits));
}

std::pair<std::string, int64_t> TestServer::reference(const GenerationJob& job) {
    moe::KvCache cache = model_->new_cache();
    moe::GenerateRequest req;
    req.prompt = job.prompt;
    req.max_new_tokens = job.max_tokens;
    req.sampling.greedy = true;
    req.stop_ids = job.stop_ids;
    const moe::GenerateResult r = moe::generate(*model_, cache, req);
    return {tokenizer_->decode(r.tokens, /*skip_special_tokens=*/true), int64_t(r.tokens.size())};
}

void TestServer::schedulerMatchesGenerate() {
    if (!model_) QSKIP("no model");
    Metrics metrics;
    SchedulerOptions so;
    so.max_batch = 3;      // 5 requests: two wait, then join as others leave
    so.prefill_chunk = 4;  // prompts take several steps to join
    Scheduler scheduler(*model_, *tokenizer_, so, metrics);
    scheduler.start();
    const std::vector<std::string> users = {"Hello there", "a", "What is a mixture of experts?",
                                            "zzzz", "The quick brown fox"};
    std::vector<GenerationJob> jobs;
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (size_t i = 0; i < users.size(); ++i) {
        const ParsedRequest p = parse_chat_request(
            chat_body("tiny", users[i], 6 + int(i) * 3).dump(), served_->default_sampling);
        jobs.push_back(served_->make_job(p));
        // Usage counts the tokenizer's tokens of the rendered template.
        const std::string rendered =
            "<|im_start|>user\n" + users[i] + "<|im_end|>\n" + "<|im_start|>assistant\n";
        QCOMPARE(jobs.back().prompt, tokenizer_->encode(rendered, false));
        ApiError err;
        streams.push_back(scheduler.submit(jobs.back(), err));
        QVERIFY2(streams.back(), err.message.c_str());
    }
    for (size_t i = 0; i < users.size(); ++i) {
        const Answer a = collect(*streams[i]);
        QVERIFY2(!a.error, a.api_error.message.c_str());
        const auto [text, tokens] = reference(jobs[i]);
        QCOMPARE(a.text, text);
        QCOMPARE(a.usage.completion_tokens, tokens);
        QCOMPARE(a.usage.prompt_tokens, int64_t(jobs[i].prompt.size()));
        QCOMPARE(a.finish,
                 tokens == jobs[i].max_tokens ? FinishReason::Length : FinishReason::Stop);
    }
    QVERIFY(scheduler.wait_idle(std::chrono::seconds(10)));
    QCOMPARE(metrics.active(), int64_t(0));
    // The rows advanced by decode steps exceed the steps: several requests shared a step.
    const std::string prom = metrics.prometheus();
    QVERIFY(prom.find("moestudio_generated_tokens_total") != std::string::npos);
    const auto value = [&](const std::string& name) {
        const size_t at = prom.find("\n" + name + " ");
        return at == std::string::npos ? -1.0 : std::stod(prom.substr(at + name.size() + 2));
    };
    QVERIFY(value("moestudio_decode_rows_total") > value("moestudio_decode_steps_total"));
    QVERIFY(value("moestudio_generated_tokens_total") > 0);
}

void TestServer::stopStringsEndAnswers() {
    if (!model_) QSKIP("no model");
    Metrics metrics;
    Scheduler scheduler(*model_, *tokenizer_, {}, metrics);
    scheduler.start();
    const auto run = [&](std::vector<std::string> stop) {
        ParsedRequest p = parse_chat_request(chat_body("tiny", "Tell me a story", 24).dump(),
                                             served_->default_sampling);
        p.stop = std::move(stop);
        ApiError err;
        auto s = scheduler.submit(served_->make_job(p), err);
        return s ? collect(*s) : Answer{};
    };
    const Answer full = run({});
    QVERIFY2(full.text.size() >= 8, full.text.c_str());
    // A stop string from the middle of the greedy answer: the answer ends right before its
    // first occurrence, with finish_reason "stop" and fewer tokens.
    const std::string stop = full.text.substr(full.text.size() / 2, 3);
    const Answer cut = run({"never-appears", stop});
    QCOMPARE(cut.text, full.text.substr(0, full.text.find(stop)));
    QCOMPARE(cut.finish, FinishReason::Stop);
    QVERIFY(cut.usage.completion_tokens < full.usage.completion_tokens);
    QCOMPARE(cut.usage.prompt_tokens, full.usage.prompt_tokens);
}

void TestServer::seededSamplingRepeats() {
    if (!model_) QSKIP("no model");
    Metrics metrics;
    Scheduler scheduler(*model_, *tokenizer_, {}, metrics);
    scheduler.start();
    // Sampled (not greedy) requests with a seed: the same seed gives the same answer, also
    // when it shares its decode steps with other requests.
    const auto submit = [&](int64_t seed) {
        json body = chat_body("tiny", "Tell me a story", 16);
        body["temperature"] = 1.5;
        body["top_p"] = 0.95;
        body["seed"] = seed;
        ApiError err;
        return scheduler.submit(
            served_->make_job(parse_chat_request(body.dump(), served_->default_sampling)), err);
    };
    const Answer alone = collect(*submit(7));
    auto a = submit(7), b = submit(8), c = submit(7);
    const Answer ra = collect(*a), rb = collect(*b), rc = collect(*c);
    QVERIFY(!alone.error && !ra.error && !rb.error && !rc.error);
    QCOMPARE(ra.text, alone.text);
    QCOMPARE(rc.text, alone.text);
    QVERIFY2(rb.text != alone.text, "seeds 7 and 8 gave the same 16 sampled tokens");
}

void TestServer::cancelledRequestsLeave() {
    if (!model_) QSKIP("no model");
    Metrics metrics;
    Scheduler scheduler(*model_, *tokenizer_, {}, metrics);
    scheduler.start();
    ApiError err;
    auto s = scheduler.submit(
        served_->make_job(parse_chat_request(chat_body("tiny", "Tell me a story", 400).dump(),
                                             served_->default_sampling)),
        err);
    QVERIFY(s);
    StreamEvent e;
    QVERIFY(s->next(e, std::chrono::seconds(60)));  // it is running
    s->cancel();                                    // the client went away
    QVERIFY(scheduler.wait_idle(std::chrono::seconds(30)));
    QVERIFY2(metrics.generated_tokens() < 400,
             qPrintable(QString::number(metrics.generated_tokens())));
}

void TestServer::contextLimits() {
    if (!model_) QSKIP("no model");
    const int64_t ctx = model_->info().max_context;
    QVERIFY(ctx > 0);
    const auto code_of = [&](const json& body) -> std::string {
        try {
            served_->make_job(parse_chat_request(body.dump(), served_->default_sampling));
        } catch (const ApiException& e) {
            return std::to_string(e.error().status) + " " + e.error().code;
        }
        return "accepted";
    };
    QCOMPARE(code_of(chat_body("tiny", std::string(size_t(ctx), 'x'), 4)),
             std::string("400 context_length_exceeded"));
    QCOMPARE(code_of(chat_body("tiny", "hi", int(ctx))),
             std::string("400 context_length_exceeded"));
    QCOMPARE(code_of(chat_body("tiny", "hi", 4)), std::string("accepted"));
    // Without max_tokens the answer may use what the context leaves.
    json no_limit = chat_body("tiny", "hi", 1);
    no_limit.erase("max_tokens");
    const GenerationJob job =
        served_->make_job(parse_chat_request(no_limit.dump(), served_->default_sampling));
    QVERIFY(job.max_tokens > 0 && job.max_tokens + int64_t(job.prompt.size()) <= ctx);
}

void TestServer::queueFullRefuses() {
    if (!model_) QSKIP("no model");
    Metrics metrics;
    SchedulerOptions so;
    so.max_batch = 1;
    so.max_queue = 1;
    Scheduler scheduler(*model_, *tokenizer_, so, metrics);
    // Not started yet: the requests stay queued, so the limit is hit deterministically.
    const GenerationJob job = served_->make_job(
        parse_chat_request(chat_body("tiny", "hi", 3).dump(), served_->default_sampling));
    ApiError err;
    auto a = scheduler.submit(job, err);
    auto b = scheduler.submit(job, err);
    QVERIFY(a && b);  // one for the free batch slot, one for the queue
    auto c = scheduler.submit(job, err);
    QVERIFY(!c);
    QCOMPARE(err.status, 429);
    QCOMPARE(err.code, std::string("queue_full"));
    scheduler.start();
    QVERIFY(!collect(*a).error);
    QVERIFY(!collect(*b).error);
    // Room again once they are done.
    auto d = scheduler.submit(job, err);
    QVERIFY(d);
    QVERIFY(!collect(*d).error);
    // Shutting down: 503 for new requests.
    scheduler.begin_shutdown();
    QVERIFY(!scheduler.submit(job, err));
    QCOMPARE(err.status, 503);

    // Stopped with requests still queued: they are answered with 503, not left hanging.
    Scheduler never(*model_, *tokenizer_, so, metrics);
    auto e = never.submit(job, err);
    QVERIFY(e);
    never.stop();
    const Answer ae = collect(*e);
    QVERIFY(ae.error);
    QCOMPARE(ae.api_error.status, 503);
}

void TestServer::hostPolicy() {
    QVERIFY(is_loopback_host("127.0.0.1"));
    QVERIFY(is_loopback_host("127.1.2.3"));
    QVERIFY(is_loopback_host("localhost"));
    QVERIFY(is_loopback_host("::1"));
    QVERIFY(!is_loopback_host("0.0.0.0"));
    QVERIFY(!is_loopback_host("192.168.1.10"));
    QVERIFY(!is_loopback_host("::"));
    ServerOptions o;
    o.host = "0.0.0.0";
    QVERIFY_THROWS_EXCEPTION(moe::Error, check_server_options(o));
    o.api_key = "k";
    check_server_options(o);
    o.port = 70000;
    QVERIFY_THROWS_EXCEPTION(moe::Error, check_server_options(o));
}

void TestServer::httpEndToEnd() {
    if (!model_) QSKIP("no model");
    Metrics metrics;
    SchedulerOptions so;
    so.max_batch = 4;
    Scheduler scheduler(*model_, *tokenizer_, so, metrics);
    ServerOptions o;
    o.port = 0;
    o.api_key = "sk-test";
    o.max_body_bytes = 4096;
    HttpServer server(*served_, scheduler, metrics, o);
    server.bind();
    QVERIFY(server.port() > 0);
    scheduler.start();
    server.start_background();

    // A second server cannot take the same port.
    ServerOptions taken = o;
    taken.port = server.port();
    HttpServer second(*served_, scheduler, metrics, taken);
    QVERIFY_THROWS_EXCEPTION(moe::Error, second.bind());

    httplib::Client cli("127.0.0.1", server.port());
    cli.set_read_timeout(60, 0);
    const httplib::Headers auth = {{"Authorization", "Bearer sk-test"}};
    const auto error_code = [](const httplib::Result& r) {
        return json::parse(r->body)["error"]["code"];
    };

    auto r = cli.Get("/health");  // open without a key, for probes
    QVERIFY(r);
    QCOMPARE(r->status, 200);

    r = cli.Get("/v1/models");
    QCOMPARE(r->status, 401);
    QCOMPARE_JSON(error_code(r), json("invalid_api_key"));
    r = cli.Get("/v1/models", {{"Authorization", "Bearer wrong"}});
    QCOMPARE(r->status, 401);
    r = cli.Get("/v1/models", auth);
    QCOMPARE(r->status, 200);
    const json models = json::parse(r->body);
    QCOMPARE_JSON(models["object"], json("list"));
    QCOMPARE_JSON(models["data"][0]["id"], json("tiny"));
    QCOMPARE(cli.Get("/v1/models/tiny", auth)->status, 200);
    QCOMPARE(cli.Get("/v1/models/other", auth)->status, 404);

    r = cli.Post("/v1/chat/completions", auth, chat_body("gpt-4o", "hi", 3).dump(),
                 "application/json");
    QCOMPARE(r->status, 404);
    QCOMPARE_JSON(error_code(r), json("model_not_found"));
    r = cli.Post("/v1/chat/completions", auth, "{oops", "application/json");
    QCOMPARE(r->status, 400);
    QCOMPARE_JSON(error_code(r), json("invalid_json"));
    r = cli.Post("/v1/chat/completions", auth, chat_body("tiny", std::string(8000, 'x'), 3).dump(),
                 "application/json");
    QVERIFY(r);
    QCOMPARE(r->status, 413);
    QVERIFY(json::parse(r->body)["error"]["message"].is_string());
    r = cli.Get("/no/such/path", auth);
    QCOMPARE(r->status, 404);
    QVERIFY(json::parse(r->body)["error"].is_object());

    // Non-streamed and streamed answers to the same greedy request agree, and equal
    // generate()'s.
    const json body = chat_body("tiny", "Hello", 10);
    r = cli.Post("/v1/chat/completions", auth, body.dump(), "application/json");
    QCOMPARE(r->status, 200);
    const json answer = json::parse(r->body);
    QCOMPARE_JSON(answer["object"], json("chat.completion"));
    const std::string text = answer["choices"][0]["message"]["content"];
    const GenerationJob job =
        served_->make_job(parse_chat_request(body.dump(), served_->default_sampling));
    const auto [ref_text, ref_tokens] = reference(job);
    QCOMPARE(text, ref_text);
    QCOMPARE(answer["usage"]["completion_tokens"].get<int64_t>(), ref_tokens);
    QCOMPARE(answer["usage"]["prompt_tokens"].get<int64_t>(), int64_t(job.prompt.size()));
    QCOMPARE(answer["usage"]["total_tokens"].get<int64_t>(),
             int64_t(job.prompt.size()) + ref_tokens);

    json sbody = body;
    sbody["stream"] = true;
    sbody["stream_options"] = {{"include_usage", true}};
    r = cli.Post("/v1/chat/completions", auth, sbody.dump(), "application/json");
    QCOMPARE(r->status, 200);
    QVERIFY(r->get_header_value("Content-Type").starts_with("text/event-stream"));
    std::string streamed, finish;
    json usage;
    bool saw_done = false, saw_role = false;
    size_t pos = 0;
    while ((pos = r->body.find("data: ", pos)) != std::string::npos) {
        const size_t end = r->body.find("\n\n", pos);
        QVERIFY(end != std::string::npos);
        const std::string data = r->body.substr(pos + 6, end - pos - 6);
        pos = end;
        if (data == "[DONE]") {
            saw_done = true;
            continue;
        }
        QVERIFY(!saw_done);
        const json chunk = json::parse(data);
        QCOMPARE_JSON(chunk["object"], json("chat.completion.chunk"));
        if (chunk.contains("usage")) {
            usage = chunk["usage"];
            continue;
        }
        const json& c = chunk["choices"][0];
        if (c["delta"].contains("role")) saw_role = true;
        if (c["delta"].contains("content")) streamed += c["delta"]["content"].get<std::string>();
        if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
    }
    QVERIFY(saw_role);
    QVERIFY(saw_done);
    QCOMPARE(streamed, text);
    QCOMPARE(finish, answer["choices"][0]["finish_reason"].get<std::string>());
    QCOMPARE_JSON(usage, answer["usage"]);

    // /v1/completions: the prompt text as is.
    r = cli.Post(
        "/v1/completions", auth,
        json{{"model", "tiny"}, {"prompt", "Once"}, {"max_tokens", 4}, {"temperature", 0}}.dump(),
        "application/json");
    QCOMPARE(r->status, 200);
    const json completion = json::parse(r->body);
    QCOMPARE_JSON(completion["object"], json("text_completion"));
    QCOMPARE(completion["usage"]["prompt_tokens"].get<int64_t>(),
             int64_t(tokenizer_->encode("Once", true).size()));
    QVERIFY(completion["choices"][0]["text"].is_string());

    r = cli.Get("/metrics", auth);
    QCOMPARE(r->status, 200);
    QVERIFY(r->body.find(
                "moestudio_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"}") !=
            std::string::npos);
    QVERIFY(r->body.find("moestudio_requests_total{endpoint=\"/v1/models\",status=\"401\"}") !=
            std::string::npos);
    QVERIFY(r->body.find("moestudio_tokens_per_second") != std::string::npos);
    QVERIFY(r->body.find("moestudio_queue_depth 0") != std::string::npos);

    scheduler.begin_shutdown();
    r = cli.Post("/v1/chat/completions", auth, body.dump(), "application/json");
    QCOMPARE(r->status, 503);
    QCOMPARE(cli.Get("/health")->status, 503);
    server.stop();
    scheduler.stop();
}

// The client side of remote engines (api/remote_chat.h) against this server: the model list,
// a streamed answer equal to generate()'s with the server's token counts, stop on request,
// and errors that say what is wrong (key, address, URL form).
void TestServer::remoteChatClient() {
    if (!model_) QSKIP("no model");
    Metrics metrics;
    Scheduler scheduler(*model_, *tokenizer_, SchedulerOptions{}, metrics);
    ServerOptions o;
    o.port = 0;
    o.api_key = "sk-remote";
    HttpServer server(*served_, scheduler, metrics, o);
    server.bind();
    scheduler.start();
    server.start_background();
    const std::string url = "http://127.0.0.1:" + std::to_string(server.port());

    const moe::RemoteChat remote({url + "/v1/", "sk-remote"});
    QCOMPARE(remote.models(), std::vector<std::string>{"tiny"});
    QCOMPARE(remote.check(), std::string());

    const json body = chat_body("tiny", "Hello", 10);
    const GenerationJob job =
        served_->make_job(parse_chat_request(body.dump(), served_->default_sampling));
    const auto [ref_text, ref_tokens] = reference(job);
    moe::RemoteSampling s;
    s.temperature = 0;
    s.max_tokens = 10;
    std::string streamed;
    int pieces = 0;
    const moe::RemoteAnswer a =
        remote.chat("tiny", nlohmann::ordered_json::parse(body["messages"].dump()), s,
                    [&](const std::string& piece) {
                        streamed += piece;
                        ++pieces;
                        return true;
                    });
    QCOMPARE(a.text, ref_text);
    QCOMPARE(streamed, ref_text);
    QVERIFY(pieces > 1);
    QCOMPARE(a.completion_tokens, ref_tokens);
    QCOMPARE(a.prompt_tokens, int64_t(job.prompt.size()));
    QVERIFY(a.finish_reason == "stop" || a.finish_reason == "length");

    const moe::RemoteAnswer cut =
        remote.chat("tiny", nlohmann::ordered_json::parse(body["messages"].dump()), s,
                    [](const std::string&) { return false; });
    QCOMPARE(cut.finish_reason, std::string("cancelled"));
    QVERIFY(cut.text.size() < ref_text.size());

    const auto message = [](const std::function<void()>& f) {
        try {
            f();
        } catch (const moe::Error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    QVERIFY(message([&] {
                moe::RemoteChat({url, "wrong"}).models();
            }).find("API key") != std::string::npos);
    QVERIFY(message([&] {
                remote.chat("other", nlohmann::ordered_json::parse(body["messages"].dump()), s, {});
            }).find("404") != std::string::npos);
    server.stop();
    scheduler.stop();
    const std::string down = moe::RemoteChat({url, "sk-remote"}).check();
    QVERIFY2(down.find("cannot connect") != std::string::npos, down.c_str());
    QVERIFY_THROWS_EXCEPTION(moe::Error, moe::RemoteChat({"https://example.invalid/v1", ""}));
    QVERIFY_THROWS_EXCEPTION(moe::Error, moe::RemoteChat({"127.0.0.1:8080", ""}));
    QVERIFY_THROWS_EXCEPTION(moe::Error, moe::RemoteChat({"http://host:99999", ""}));
}

QTEST_GUILESS_MAIN(TestServer)
#include "tst_server.moc"
