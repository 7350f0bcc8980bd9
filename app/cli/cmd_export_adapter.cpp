// export-adapter: an adapter (PEFT folder or llama.cpp LoRA GGUF) as the other format, or
// merged into its base model (issue 7's export).
#include <cstdio>

#include "api/adapter_export.h"
#include "args.h"
#include "commands.h"
#include "core/error.h"
#include "model/decoder_model.h"
#include "model/lora_adapter.h"
#include "model/model.h"
#include "train/gguf_adapter_export.h"
#include "train/peft_export.h"
#include "train/peft_layout.h"

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
    moe::LoraAdapter adapter = moe::load_lora_adapter(*args.get("adapter"));
    if (format != "peft" && format != "gguf")
        throw moe::Error("--format: expected merged, peft or gguf, got '" + format + "'");
    moe::LoadOptions lo;
    lo.expert_format = "reference";  // the adapter's values are read back, nothing runs
    auto model = moe::load_model(model_path, lo);
    auto* d = dynamic_cast<moe::DecoderModel*>(model.get());
    if (!d) throw moe::Error(model_path + ": not a per-layer decoder model");
    if (!adapter.fused_raw.empty()) moe::resolve_fused_experts(adapter, *d);
    moe::apply_lora(*d, adapter, scale);
    const moe::train::PeftTensors values = moe::train::peft_values(adapter, *d);
    if (format == "peft") {
        moe::train::save_peft_adapter(out, adapter, values);
    } else {
        moe::train::save_gguf_adapter(out, adapter, values, *d);
    }
    std::fprintf(stderr, "wrote %s (%s, %zu layers)\n", out.c_str(), format.c_str(),
                 adapter.layers.size());
    return 0;
}

}  // namespace moecli
