// convert: a Hugging Face folder to a GGUF file for MoE Studio and llama.cpp.
#include <cstdio>

#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "model/gguf_export.h"

namespace moecli {

int cmd_convert(const std::vector<std::string>& argv) {
    const Args args(argv, {"quiet"}, {"out", "type"});
    if (args.positional().size() != 1 || !args.has("out")) {
        throw moe::Error(
            "usage: moestudio-cli convert HF_DIR --out FILE.gguf [--type "
            "bf16|f16|f32|q8_0|q4_0|q4_k|q5_k|q6_k|...]");
    }
    moe::GgufExportOptions o;
    o.type = moe::parse_export_type(args.get_or("type", "bf16"));
    const bool quiet = args.flag("quiet");
    o.progress = [quiet](size_t done, size_t total) {
        if (!quiet) std::fprintf(stderr, "\rconverting layers: %zu/%zu", done, total);
    };
    const auto r = moe::export_gguf(args.positional()[0], *args.get("out"), o);
    if (!quiet) {
        std::fprintf(stderr, "\nwrote %s: %zu tensors, tokenizer %s%s\n", args.get("out")->c_str(),
                     r.tensors, r.tokenizer.c_str(),
                     r.fallback_tensors
                         ? (", " + std::to_string(r.fallback_tensors) +
                            " tensors in a fallback type (rows not a multiple of the block)")
                               .c_str()
                         : "");
    }
    for (const auto& c : r.llama_cpp_caveats) std::fprintf(stderr, "note: %s\n", c.c_str());
    return 0;
}

}  // namespace moecli
