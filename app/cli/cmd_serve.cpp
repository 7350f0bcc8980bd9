// moestudio-cli serve: the model behind an OpenAI-compatible HTTP API (engine/src/server/).
// Loads and places the model as `generate` does, then serves until SIGINT/SIGTERM, after which
// it refuses new requests (503), lets running ones finish for a while, and exits.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "core/parallel.h"
#include "model/model_tokenizer.h"
#include "server/http_server.h"
#include "server/scheduler.h"
#include "server/served_model.h"

namespace moecli {

namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_stop_signal(int) {
    g_stop.store(true);
}

constexpr const char* kServeUsage =
    "usage: moestudio-cli serve [MODEL] [--host 127.0.0.1] [--port 8080] [--api-key KEY] "
    "[--max-batch N] [--max-queue N] [--max-body-kib N] [--max-tokens N] [--timeout S] "
    "[--threads N] [--placement FILE.json | --gpu-budget GiB --cpu-experts all|none|auto] "
    "[--name NAME]\n(without MODEL: the built-in demo model)";

// The built-in demo model beside the executable (installed, or in the build tree), as the app
// finds it.
std::string find_demo_model() {
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return {};
    const auto dir = exe.parent_path();
    for (const auto& c : {dir / "../share/moestudio/demo-model", dir / "../../demo-model"}) {
        if (std::filesystem::exists(c / "config.json", ec))
            return std::filesystem::weakly_canonical(c, ec).string();
    }
    return {};
}

int int_option(const Args& args, const std::string& name, long long fallback, long long lo,
               long long hi) {
    const long long v = args.get_int(name, fallback);
    if (v < lo || v > hi) {
        throw moe::Error("--" + name + " must be between " + std::to_string(lo) + " and " +
                         std::to_string(hi) + ", got " + std::to_string(v));
    }
    return int(v);
}

}  // namespace

int cmd_serve(const std::vector<std::string>& argv) {
    const Args args(argv, {"gpu-exact", "rope-freq-bf16", "llamacpp-attention"},
                    {"host",          "port",
                     "api-key",       "max-batch",
                     "max-queue",     "max-body-kib",
                     "max-tokens",    "timeout",
                     "threads",       "name",
                     "lora",          "lora-scale",
                     "expert-format", "defer-experts",
                     "gpu-budget",    "cpu-experts",
                     "placement",     "context",
                     "prefill-chunk", "stream-experts",
                     "cuda-graphs",   "signalled-steps",
                     "usage",         "strategy"});
    if (args.positional().size() > 1) throw moe::Error(kServeUsage);

    moe::server::ServerOptions so;
    so.host = args.get_or("host", so.host);
    so.port = int_option(args, "port", so.port, 0, 65535);
    so.api_key = args.get_or("api-key", "");
    if (args.has("api-key") && so.api_key.empty()) throw moe::Error("--api-key must not be empty");
    so.max_body_bytes = size_t(int_option(args, "max-body-kib", 1024, 1, 1 << 20)) * 1024;
    so.generation_timeout_s = int_option(args, "timeout", so.generation_timeout_s, 1, 86400);
    // Refuse an unsafe bind before spending minutes loading a large model.
    moe::server::check_server_options(so);
    moe::server::SchedulerOptions sched;
    sched.max_batch = int_option(args, "max-batch", sched.max_batch, 1, 256);
    sched.max_queue = int_option(args, "max-queue", sched.max_queue, 0, 4096);
    const int max_tokens = int_option(args, "max-tokens", 512, 1, 1 << 24);

    std::string path;
    if (!args.positional().empty()) {
        path = args.positional()[0];
    } else {
        path = find_demo_model();
        if (path.empty())
            throw moe::Error("no MODEL given and the built-in demo model was not found; " +
                             std::string(kServeUsage));
        std::fprintf(stderr, "serve: no MODEL given, serving the built-in demo model %s\n",
                     path.c_str());
    }
    if (args.has("threads")) moe::set_parallel_threads(int_option(args, "threads", 0, 1, 4096));

    const auto tokenizer = moe::load_model_tokenizer(path);
    PlacedRun placed = place_model(args, moe::load_model(path, load_options(args)));
    const std::unique_ptr<moe::Model> model = std::move(placed.model);
    if (placed.placement.uses_gpu() && !args.has("max-batch")) {
        // The GPU path has no batched step: requests would take turns, and each switch of KV
        // cache re-records the decode step's CUDA graph. One at a time is faster there.
        sched.max_batch = 1;
        std::fprintf(stderr,
                     "serve: the GPU path decodes one request at a time (--max-batch 1); "
                     "others wait in the queue\n");
    }
    moe::server::ServedModel served =
        moe::server::make_served_model(*model, *tokenizer, path, sampling_from(args, path));
    served.default_max_tokens = max_tokens;
    if (args.has("name")) served.name = *args.get("name");
    if (served.name.empty()) throw moe::Error("--name must not be empty");

    moe::server::Metrics metrics;
    moe::server::Scheduler scheduler(*model, *tokenizer, sched, metrics);
    moe::server::HttpServer http(served, scheduler, metrics, so);
    http.bind();
    scheduler.start();

    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
    std::atomic<bool> http_ended{false};
    std::thread http_thread([&http, &http_ended] {
        http.listen();
        http_ended = true;  // also when listening failed: then there is nothing to wait for
    });
    // One line on stdout that scripts wait for (the port is the real one with --port 0).
    std::printf("serving '%s' on http://%s:%d/v1 (batch %d, queue %d%s)\n", served.name.c_str(),
                so.host.c_str(), http.port(), sched.max_batch, sched.max_queue,
                so.api_key.empty() ? "" : ", API key required");
    std::fflush(stdout);

    while (!g_stop.load() && !http_ended.load())
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (http_ended.load() && !g_stop.load()) {
        scheduler.stop();
        http_thread.join();
        throw moe::Error("the HTTP server stopped unexpectedly");
    }
    std::fprintf(stderr, "serve: stopping: new requests get 503, running ones may finish\n");
    scheduler.begin_shutdown();
    if (!scheduler.wait_idle(std::chrono::seconds(10)))
        std::fprintf(stderr, "serve: requests still running after 10 s are cut off\n");
    scheduler.stop();
    http.stop();
    http_thread.join();
    return 0;
}

}  // namespace moecli
