// moestudio-cli bench e2e: a whole model's prompt processing and generation speed with
// llama-bench's semantics, so the two tools' numbers line up: ppN = N prompt tokens in one
// batch from an empty context, tgN = N tokens generated one at a time from an empty context;
// mean and standard deviation over repetitions, after one warm-up run of each.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "core/parallel.h"
#include "model/model.h"

namespace moecli {

namespace {

using Clock = std::chrono::steady_clock;

struct Stat {
    double mean = 0, stddev = 0;
    std::vector<double> samples;  // tokens per second
};

Stat stat_of(std::vector<double> v) {
    Stat s;
    s.samples = std::move(v);
    if (s.samples.empty()) return s;
    s.mean = std::accumulate(s.samples.begin(), s.samples.end(), 0.0) / double(s.samples.size());
    double var = 0;
    for (double x : s.samples) var += (x - s.mean) * (x - s.mean);
    if (s.samples.size() > 1) s.stddev = std::sqrt(var / double(s.samples.size() - 1));
    return s;
}

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Prompt processing: n random tokens in one forward pass from an empty cache.
double run_pp(moe::Model& model, int64_t n, std::mt19937& rng) {
    std::uniform_int_distribution<int32_t> tok(0, int32_t(model.info().vocab_size - 1));
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& t : ids) t = tok(rng);
    moe::KvCache cache = model.new_cache();
    std::vector<float> logits;
    const auto t0 = Clock::now();
    model.forward(ids, cache, logits, false);
    return double(n) / seconds_since(t0);
}

// Generation: n single-token steps from an empty cache, each feeding back the greedy token.
double run_tg(moe::Model& model, int64_t n, std::mt19937& rng) {
    std::uniform_int_distribution<int32_t> tok(0, int32_t(model.info().vocab_size - 1));
    moe::KvCache cache = model.new_cache();
    std::vector<float> logits;
    int32_t next = tok(rng);
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < n; ++i) {
        model.forward(std::vector<int32_t>{next}, cache, logits, false);
        next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }
    return double(n) / seconds_since(t0);
}

}  // namespace

int bench_e2e(const std::vector<std::string>& argv) {
    const Args args(argv, {"json", "rope-freq-bf16", "llamacpp-attention", "gpu-exact"},
                    {"prompt-tokens", "gen-tokens",      "repetitions",
                     "threads",       "expert-format",   "defer-experts",
                     "lora",          "lora-scale",      "gpu-budget",
                     "cpu-experts",   "placement",       "context",
                     "seed",          "prefill-chunk",   "stream-experts",
                     "cuda-graphs",   "signalled-steps", "usage",
                     "usage-out",     "strategy"});
    if (args.positional().size() != 1) {
        throw moe::Error(
            "usage: moestudio-cli bench e2e MODEL [--prompt-tokens N] [--gen-tokens N] "
            "[--repetitions R] [--threads N] [--expert-format F] [--gpu-budget GiB] "
            "[--cpu-experts all|none|auto] [--placement FILE.json] [--json]");
    }
    const std::string path = args.positional()[0];
    const int64_t pp = args.get_int("prompt-tokens", 512), tg = args.get_int("gen-tokens", 128);
    const int64_t reps = args.get_int("repetitions", 5);
    if (pp < 0 || tg < 0 || reps < 1)
        throw moe::Error("--prompt-tokens and --gen-tokens must be >= 0, --repetitions >= 1");
    if (args.has("threads")) moe::set_parallel_threads(int(args.get_int("threads", 0)));
    const auto t_load = Clock::now();
    PlacedRun run = place_model(args, moe::load_model(path, load_options(args)));
    const double load_s = seconds_since(t_load);
    const auto& model = run.model;
    const moe::Placement& placement = run.placement;
    std::mt19937 rng(uint32_t(args.get_int("seed", 1)));

    struct Test {
        std::string name;
        int64_t n_prompt, n_gen;
        Stat s;
    };
    std::vector<Test> tests;
    if (pp > 0) {
        run_pp(*model, std::min<int64_t>(pp, 32), rng);  // warm-up: pages, pools, caches
        std::vector<double> v;
        for (int64_t r = 0; r < reps; ++r) v.push_back(run_pp(*model, pp, rng));
        tests.push_back({"pp" + std::to_string(pp), pp, 0, stat_of(v)});
    }
    if (tg > 0) {
        run_tg(*model, std::min<int64_t>(tg, 4), rng);
        std::vector<double> v;
        for (int64_t r = 0; r < reps; ++r) v.push_back(run_tg(*model, tg, rng));
        tests.push_back({"tg" + std::to_string(tg), 0, tg, stat_of(v)});
    }
    save_expert_usage(args, *model);
    const moe::ModelInfo& info = model->info();
    if (args.flag("json")) {
        nlohmann::json out = nlohmann::json::array();
        for (const Test& t : tests) {
            out.push_back({{"model", path},
                           {"architecture", info.architecture},
                           {"n_threads", moe::parallel_threads()},
                           {"expert_format", info.expert_format},
                           {"placement", placement.summary()},
                           {"n_prompt", t.n_prompt},
                           {"n_gen", t.n_gen},
                           {"avg_ts", t.s.mean},
                           {"stddev_ts", t.s.stddev},
                           {"samples_ts", t.s.samples},
                           {"load_seconds", load_s}});
        }
        std::printf("%s\n", out.dump().c_str());
        return 0;
    }
    std::printf("model: %s (%s, %lld layers, %lld experts, experts as %s), threads %d\n",
                path.c_str(), info.architecture.c_str(), (long long)info.layers,
                (long long)info.experts, info.expert_format.c_str(), moe::parallel_threads());
    std::printf("| test   |            t/s |\n|--------|----------------|\n");
    for (const Test& t : tests)
        std::printf("| %-6s | %7.2f ± %5.2f |\n", t.name.c_str(), t.s.mean, t.s.stddev);
    return 0;
}

}  // namespace moecli
