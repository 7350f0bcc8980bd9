#include "train/gguf_adapter_export.h"

#include "core/error.h"
#include "formats/gguf.h"
#include "model/gguf_loader.h"

namespace moe::train {

void save_gguf_adapter(const std::string& path, const LoraAdapter& layout,
                       const PeftTensors& values, const DecoderModel& model) {
    const std::string& src = model.info().path;
    if (!src.ends_with(".gguf"))
        throw Error(path + ": a GGUF adapter is made for a model loaded from a GGUF file (" + src +
                    " is not); convert the model first, then train on the GGUF");
    if (!layout.fused.empty())
        throw Error(path +
                    ": routed-expert adapters have no llama.cpp GGUF form here; save "
                    "them as a PEFT folder");
    const auto file = GgufFile::open(src);
    GgufWriter w;
    w.add_string("general.architecture", file->require_string("general.architecture"));
    w.add_string("general.type", "adapter");
    w.add_string("adapter.type", "lora");
    float alpha = -1.0f;
    for (const auto& [module, p] : layout.layers) {
        if (alpha < 0) alpha = p.alpha;
        if (p.alpha != alpha)
            throw Error(path + ": the adapter's layers have different alphas (" +
                        std::to_string(alpha) + ", " + std::to_string(p.alpha) +
                        "); a GGUF adapter holds one");
        const std::string stem = gguf_module_stem(module);
        if (stem.empty() || module.find("kv_b_proj") != std::string::npos)
            throw Error(path + ": the adapter layer '" + module + "' has no llama.cpp GGUF name");
        const auto a = values.find(module + ".lora_A"), b = values.find(module + ".lora_B");
        require(a != values.end() && b != values.end(), "adapter values missing for " + module);
        // ggml shapes list the innermost dimension first: A [r, in] -> {in, r}.
        w.add_tensor(stem + ".weight.lora_a", GgmlType::F32, {p.in, p.rank}, a->second.data(),
                     a->second.size() * sizeof(float));
        w.add_tensor(stem + ".weight.lora_b", GgmlType::F32, {p.rank, p.out}, b->second.data(),
                     b->second.size() * sizeof(float));
    }
    w.add_f32("adapter.lora.alpha", alpha);
    w.write(path);
}

}  // namespace moe::train
