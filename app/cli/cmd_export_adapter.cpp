// export-adapter: an adapter (PEFT folder or llama.cpp LoRA GGUF) as the other format, or
// merged into its base model (issue 7's export).
#include <cstdio>

#include "api/adapter_export.h"
#include "args.h"
#include "commands.h"
#include "core/error.h"

namespace moecli {

int cmd_export_adapter(const std::vector<std::string>& argv) {
    const Args args(argv, {}, {"adapter", "format", "out", "scale"});
    if (args.positional().size() != 1 || !args.has("adapter") || !args.has("format") ||
        !args.has("out"))
        throw moe::Error(
            "usage: moestudio-cli export-adapter MODEL --adapter PEFT_DIR|ADAPTER.gguf --format "
            "merged|peft|gguf --out PATH [--scale S]");
    const std::string model_path = args.positional()[0], format = *args.get("format"),
                      out = *args.get("out");
    const float scale = float(args.get_double("scale", 1.0));
    if (format == "merged") {
        if (scale != 1.0f) throw moe::Error("--scale applies to --format peft and gguf only");
        const auto r = moe::export_merged_model(model_path, *args.get("adapter"), out);
        std::fprintf(stderr, "merged %zu weights (%zu tensors copied) into %s\n", r.merged,
                     r.copied, out.c_str());
        return 0;
    }
    if (format != "peft" && format != "gguf")
        throw moe::Error("--format: expected merged, peft or gguf, got '" + format + "'");
    const size_t layers =
        moe::convert_adapter(model_path, *args.get("adapter"), format, out, scale);
    std::fprintf(stderr, "wrote %s (%s, %zu layers)\n", out.c_str(), format.c_str(), layers);
    return 0;
}

}  // namespace moecli
