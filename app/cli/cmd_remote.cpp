// moestudio-cli remote: a chat on a remote OpenAI-compatible server (api/remote_chat.h) — SGLang
// with KTransformers, vLLM, llama-server or another `moestudio-cli serve` — with the same
// streaming, stop strings and token counts as a local `generate`.
//   remote models URL [--api-key KEY]
//   remote chat URL --model NAME --prompt TEXT [--system TEXT] [--max-tokens N]
//               [--temperature T] [--top-p P] [--seed S] [--stop TEXT] [--api-key KEY]
#include <cstdio>

#include "api/remote_chat.h"
#include "args.h"
#include "commands.h"
#include "core/error.h"

namespace moecli {

namespace {

constexpr const char* kUsage =
    "usage: moestudio-cli remote models URL [--api-key KEY]\n"
    "       moestudio-cli remote chat URL --model NAME --prompt TEXT [--system TEXT] "
    "[--max-tokens N] [--temperature T] [--top-p P] [--seed S] [--stop TEXT] [--api-key KEY]";

}  // namespace

int cmd_remote(const std::vector<std::string>& argv) {
    if (argv.empty()) throw moe::Error(kUsage);
    const std::string verb = argv[0];
    const std::vector<std::string> rest(argv.begin() + 1, argv.end());
    if (verb == "models") {
        const Args args(rest, {}, {"api-key"});
        if (args.positional().size() != 1) throw moe::Error(kUsage);
        const moe::RemoteChat remote({args.positional()[0], args.get_or("api-key", "")});
        for (const std::string& id : remote.models()) std::printf("%s\n", id.c_str());
        return 0;
    }
    if (verb == "chat") {
        const Args args(rest, {},
                        {"model", "prompt", "system", "max-tokens", "temperature", "top-p", "seed",
                         "stop", "api-key"});
        if (args.positional().size() != 1 || !args.has("model") || !args.has("prompt"))
            throw moe::Error(kUsage);
        const moe::RemoteChat remote({args.positional()[0], args.get_or("api-key", "")});
        nlohmann::ordered_json messages = nlohmann::ordered_json::array();
        if (args.has("system"))
            messages.push_back({{"role", "system"}, {"content", *args.get("system")}});
        messages.push_back({{"role", "user"}, {"content", *args.get("prompt")}});
        moe::RemoteSampling s;
        s.temperature = args.get_double("temperature", 0.7);
        s.top_p = args.get_double("top-p", 1.0);
        s.max_tokens = int(args.get_int("max-tokens", 256));
        if (args.has("seed")) s.seed = args.get_int("seed", 0);
        if (args.has("stop")) s.stop = {*args.get("stop")};
        const moe::RemoteAnswer a =
            remote.chat(*args.get("model"), messages, s, [](const std::string& piece) {
                std::fwrite(piece.data(), 1, piece.size(), stdout);
                std::fflush(stdout);
                return true;
            });
        std::printf("\n");
        std::fprintf(stderr, "[%s: %lld prompt tokens, %lld generated, finish: %s]\n",
                     remote.url().c_str(), (long long)a.prompt_tokens,
                     (long long)a.completion_tokens, a.finish_reason.c_str());
        return 0;
    }
    throw moe::Error("unknown remote command '" + verb + "'\n" + kUsage);
}

}  // namespace moecli
