#include <cstdio>

#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "core/parallel.h"
#include "formats/safetensors.h"
#include "model/model.h"

namespace moecli {

int cmd_logits(const std::vector<std::string>& argv) {
    const Args args(
        argv, {"rope-freq-bf16", "llamacpp-attention"},
        {"prompt-ids", "out", "threads", "lora", "lora-scale", "expert-format", "defer-experts"});
    if (args.has("threads")) moe::set_parallel_threads(int(args.get_int("threads", 0)));
    if (args.positional().size() != 1 || !args.has("prompt-ids") || !args.has("out")) {
        throw moe::Error(
            "usage: moestudio-cli logits MODEL --prompt-ids 1,2,3 --out FILE.safetensors");
    }
    const auto ids = parse_id_list(*args.get("prompt-ids"), "prompt-ids");
    const auto model = moe::load_model(args.positional()[0], load_options(args));
    moe::KvCache cache = model->new_cache();
    std::vector<float> logits;
    model->forward(ids, cache, logits, /*all_positions=*/true);
    const int64_t vocab = model->info().vocab_size;
    moe::write_safetensors(
        *args.get("out"),
        {{"logits", moe::DType::F32, {int64_t(ids.size()), vocab}, logits.data()}});
    return 0;
}

}  // namespace moecli
