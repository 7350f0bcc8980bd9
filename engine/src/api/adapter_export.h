#pragma once
// Exports of a trained adapter for the app and the CLI: merged into its base model as a new
// Hugging Face folder, or converted between PEFT and llama.cpp's LoRA GGUF. The UI reaches
// train/ only through this.
#include <functional>
#include <string>

namespace moe {

struct MergedExport {
    size_t merged = 0, copied = 0;  // weights changed, tensors copied
};

// `adapter`: a PEFT folder or llama.cpp LoRA GGUF; `base_model`: the Hugging Face folder it was
// trained on. Adapters on fused expert parameters are resolved against the model first.
// `progress(done, total)` per tensor written. Throws moe::Error naming what is wrong (a GGUF
// base, a layer the checkpoint lacks, an unsupported dtype).
MergedExport export_merged_model(const std::string& base_model, const std::string& adapter,
                                 const std::string& out_dir,
                                 const std::function<void(size_t, size_t)>& progress = {});

// The adapter in the other format: "peft" (a PEFT folder) or "gguf" (a llama.cpp LoRA GGUF;
// `base_model` must then be a GGUF file), its terms scaled by `scale`. Returns the number of
// adapted layers. Throws moe::Error naming what is wrong.
size_t convert_adapter(const std::string& base_model, const std::string& adapter,
                       const std::string& format, const std::string& out, float scale = 1.0f);

}  // namespace moe
