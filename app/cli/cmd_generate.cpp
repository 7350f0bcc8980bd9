#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "api/profiler.h"
#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "core/parallel.h"
#include "formats/hf_config.h"
#include "model/generator.h"
#include "model/model.h"
#include "model/model_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace moecli {

namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int) {
    g_interrupted.store(true);
}

}  // namespace

// Sampling defaults: the model's generation_config.json when it asks for sampling, else
// greedy; every command-line option overrides.
moe::SamplingParams sampling_from(const Args& args, const std::string& model_dir) {
    moe::SamplingParams p;
    p.greedy = true;
    std::error_code ec;
    if (std::filesystem::exists(std::filesystem::path(model_dir) / "config.json", ec)) {
        const moe::HfConfig config = moe::HfConfig::load_folder(model_dir);
        const auto& g = config.generation();
        if (g.value("do_sample", false)) {
            p.greedy = false;
            p.temperature = g.value("temperature", 1.0f);
            p.top_p = g.value("top_p", 1.0f);
            p.top_k = g.value("top_k", 0);
            p.min_p = g.value("min_p", 0.0f);
        }
        p.repetition_penalty = g.value("repetition_penalty", 1.0f);
    }
    const bool any_sampling = args.has("temperature") || args.has("top-p") || args.has("top-k") ||
                              args.has("min-p") || args.has("seed");
    if (args.flag("greedy") && any_sampling) {
        throw moe::Error(
            "--greedy cannot be combined with --temperature/--top-p/--top-k/--min-p/--seed");
    }
    if (any_sampling) p.greedy = false;
    if (args.flag("greedy")) p.greedy = true;
    p.temperature = float(args.get_double("temperature", p.temperature));
    p.top_p = float(args.get_double("top-p", p.top_p));
    p.top_k = int(args.get_int("top-k", p.top_k));
    p.min_p = float(args.get_double("min-p", p.min_p));
    p.repetition_penalty = float(args.get_double("repetition-penalty", p.repetition_penalty));
    p.seed = uint64_t(args.get_int("seed", 0));
    p.validate();
    return p;
}

int cmd_generate(const std::vector<std::string>& argv) {
    const Args args(
        argv, {"greedy", "ids", "raw", "rope-freq-bf16", "llamacpp-attention", "gpu-exact"},
        {"prompt",      "prompt-ids",      "max-new-tokens", "temperature",        "top-p",
         "top-k",       "min-p",           "seed",           "repetition-penalty", "threads",
         "lora",        "lora-scale",      "expert-format",  "defer-experts",      "gpu-budget",
         "cpu-experts", "placement",       "context",        "prefill-chunk",      "stream-experts",
         "cuda-graphs", "signalled-steps", "usage",          "usage-out",          "strategy",
         "trace"});
    if (args.positional().size() != 1 || args.has("prompt") == args.has("prompt-ids")) {
        throw moe::Error(
            "usage: moestudio-cli generate MODEL (--prompt TEXT | --prompt-ids 1,2,3) "
            "[--max-new-tokens N] [--greedy | --temperature T --top-p P --top-k K "
            "--min-p M --seed S] [--ids] [--trace FILE.json]");
    }
    const std::string path = args.positional()[0];
    if (args.has("threads")) moe::set_parallel_threads(int(args.get_int("threads", 0)));
    const long long max_new = args.get_int("max-new-tokens", 128);
    if (max_new < 0) throw moe::Error("--max-new-tokens must be >= 0");

    moe::GenerateRequest req;
    req.max_new_tokens = int(max_new);
    req.sampling = sampling_from(args, path);
    std::unique_ptr<moe::Tokenizer> tokenizer;
    if (args.has("prompt")) {
        tokenizer = moe::load_model_tokenizer(path);
        req.prompt = tokenizer->encode(*args.get("prompt"), /*add_special=*/true);
    } else {
        req.prompt = parse_id_list(*args.get("prompt-ids"), "prompt-ids");
    }
    const auto model = place_model(args, moe::load_model(path, load_options(args))).model;
    if (!tokenizer && !args.flag("ids")) {
        try {
            tokenizer = moe::load_model_tokenizer(path);
        } catch (const moe::Error&) {
            // No tokenizer: text output is impossible, print ids instead (as with --ids).
        }
    }
    const moe::ModelInfo& info = model->info();
    for (int64_t id : info.eos_token_ids) req.stop_ids.push_back(int32_t(id));

    std::signal(SIGINT, on_sigint);
    moe::KvCache cache = model->new_cache();
    // --trace: the generation (not the loading) as a Chrome trace (core/trace.h).
    const std::optional<std::string> trace_path = args.get("trace");
    if (trace_path) {
        moe::trace::set_thread_name("main");
        moe::profiler::start_capture();
    }
    std::optional<moe::TokenStreamDecoder> text;
    if (tokenizer) text.emplace(*tokenizer, /*skip_special_tokens=*/true);
    const bool print_ids = args.flag("ids") || !tokenizer;
    const auto result = moe::generate(
        *model, cache, req,
        [&](int32_t id) {
            if (!print_ids && !args.flag("raw")) {
                std::fputs(text->push(id).c_str(), stdout);
                std::fflush(stdout);
            }
            return true;
        },
        &g_interrupted);
    if (trace_path) {
        moe::profiler::stop_capture();
        const moe::profiler::Capture capture = moe::profiler::snapshot();
        moe::profiler::save_chrome_trace(capture, *trace_path);
        std::fprintf(stderr, "[trace: %zu spans on %zu lanes written to %s]\n",
                     capture.spans.size(), capture.lanes.size(), trace_path->c_str());
    }
    save_expert_usage(args, *model);
    if (args.flag("raw") && tokenizer) {
        // The exact bytes of the generated tokens, even where they are not valid UTF-8 (for
        // byte-for-byte comparisons with other engines).
        const std::string bytes =
            tokenizer->decode_bytes(result.tokens, /*skip_special_tokens=*/true);
        std::fwrite(bytes.data(), 1, bytes.size(), stdout);
        std::fputc('\n', stdout);
    } else if (print_ids) {
        std::string line;
        for (size_t i = 0; i < result.tokens.size(); ++i) {
            if (i) line += ',';
            line += std::to_string(result.tokens[i]);
        }
        std::printf("%s\n", line.c_str());
    } else {
        std::printf("%s\n", text->flush().c_str());
    }
    std::fflush(stdout);  // the text before the statistics line on a shared terminal
    const auto& s = result.stats;
    std::fprintf(stderr, "[%lld prompt tokens, %.1f tok/s | %lld generated, %.1f tok/s%s]\n",
                 (long long)s.prompt_tokens, s.prompt_tokens_per_second(),
                 (long long)s.generated_tokens, s.generate_tokens_per_second(),
                 result.reason == moe::StopReason::Cancelled ? ", cancelled" : "");
    return 0;
}

}  // namespace moecli
