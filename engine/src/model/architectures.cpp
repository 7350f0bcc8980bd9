#include "model/architectures.h"

#include <filesystem>

#include "core/error.h"
#include "cpu/moe/gguf_simd_kernels.h"
#include "model/gguf_loader.h"
#include "model/lora_adapter.h"
#include "model/moe_block.h"

namespace moe {

const std::vector<ArchitectureEntry>& supported_architectures() {
    static const std::vector<ArchitectureEntry> kEntries = {
        {"llama", arch::build_llama},
        {"mistral", arch::build_llama},
        {"qwen3_moe", arch::build_qwen3_moe},
        {"qwen2_moe", arch::build_qwen2_moe},
        {"mixtral", arch::build_mixtral},
        {"olmoe", arch::build_olmoe},
        {"deepseek_v2", arch::build_deepseek_v2},
        {"deepseek_v3", arch::build_deepseek_v3},
        {"kimi_k2", arch::build_deepseek_v3},
        {"glm4_moe", arch::build_glm4_moe},
        {"gpt_oss", arch::build_gpt_oss},
    };
    return kEntries;
}

namespace {

// Readies every MoE block's experts for the CPU operator (see LoadOptions::expert_format).
void prepare_experts(DecoderModel& model, const std::string& format) {
    static const bool simd_registered = [] {
        register_gguf_simd_kernels();
        return true;
    }();
    (void)simd_registered;
    for (auto& layer : model.layers) {
        auto* moe = dynamic_cast<MoeBlock*>(layer.ffn.get());
        if (!moe || moe->experts.empty()) continue;
        std::string f = format;
        if (f == "auto") {
            const Expert& e = moe->experts.front();
            const bool gguf =
                e.gate.w.ggml && e.gate.lora.empty() && e.up.lora.empty() && e.down.lora.empty();
            f = gguf ? "gguf" : "reference";
        }
        moe->prepare_experts(f);
    }
}

}  // namespace

std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions& options) {
    namespace fs = std::filesystem;
    if (!fs::exists(path)) throw Error(path + ": no such file or folder");
    const bool folder = fs::is_directory(path);
    HfConfig config;
    WeightStore weights;
    if (folder) {
        config = HfConfig::load_folder(path);
    } else if (fs::path(path).extension() == ".gguf") {
        GgufModelSource src = open_gguf_model(path);
        config = std::move(src.config);
        weights = std::move(src.weights);
    } else {
        throw Error(path +
                    ": expected a model folder (config.json + *.safetensors) or a .gguf file");
    }
    config.set_bf16_rope_frequencies(options.bf16_rope_frequencies);
    config.set_llama_cpp_attention(options.llama_cpp_attention);
    const std::string type = config.model_type();
    for (const auto& e : supported_architectures()) {
        if (type != e.model_type) continue;
        if (folder) weights = WeightStore::open_folder(path);
        auto model = e.build(config, std::move(weights));
        model->finalize_info(path);
        if (!options.lora_path.empty()) {
            apply_lora(*model, load_lora_adapter(options.lora_path), options.lora_scale);
        }
        prepare_experts(*model, options.expert_format);
        return model;
    }
    std::string names;
    for (const auto& e : supported_architectures()) {
        names += std::string(names.empty() ? "" : ", ") + e.model_type;
    }
    throw Error(config.origin() + ": unsupported architecture (model_type '" + type +
                "'); supported: " + names);
}

}  // namespace moe
