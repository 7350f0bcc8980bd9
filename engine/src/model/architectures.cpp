#include "model/architectures.h"

#include <filesystem>
#include <optional>

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/memory_info.h"
#include "cpu/moe/gguf_simd_kernels.h"
#include "cpu/moe/pack_cache.h"
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

// What "auto" picks for a layer's experts: GGUF experts run in place (Q4_K ones repacked
// losslessly for the 16-row kernels); bf16 and fp8 experts are
// repacked to bf16 with fp32 activations (lossless for bf16; fp8 x block scale rounds to bf16,
// as transformers' own dequantization does); experts with LoRA terms, and f32/f16 experts (whose
// bf16 rounding would lose precision the user kept on purpose), take the reference path.
std::string auto_expert_format(const std::vector<Expert>& experts) {
    const Expert& e = experts.front();
    if (!e.gate.lora.empty() || !e.up.lora.empty() || !e.down.lora.empty()) return "reference";
    if (e.gate.w.ggml && e.gate.w.ggml_type == GgmlType::BF16 &&
        e.down.w.ggml_type == GgmlType::BF16) {
        return "bf16-exact";  // bf16 GGUF experts: the packed kernels, losslessly
    }
    if (e.gate.w.ggml) {
        // Q4_K repacked for the 16-row kernels (same bytes within 3 %, 3-4x the per-core rate
        // of the row-at-a-time kernels on AVX2 and AVX-512); without SIMD, in place.
        const bool q4k =
            e.gate.w.ggml_type == GgmlType::Q4_K || e.down.w.ggml_type == GgmlType::Q4_K;
        return q4k && default_kernel_variant() != KernelVariant::Scalar ? "q4k" : "gguf";
    }
    const DType t = e.gate.w.dtype;
    return t == DType::BF16 || t == DType::F8_E4M3 ? "bf16-exact" : "reference";
}

// After repacking, the source copies of the experts are not read again for inference: hand
// their pages back so the model is resident once, not twice.
// With `q4k_only`, only the Q4_K matrices were repacked (the others are used in place).
void release_expert_sources(const std::vector<Expert>& experts, bool q4k_only) {
    for (const Expert& e : experts) {
        for (const Linear* l : {&e.gate, &e.up, &e.down}) {
            const bool repacked = !q4k_only || (l->w.ggml && l->w.ggml_type == GgmlType::Q4_K);
            if (l->w.data && repacked)
                release_pages(l->w.data, l->w.row_bytes() * size_t(l->w.rows));
        }
    }
}

// Memory the repacked experts will take: they are anonymous memory that must fit, while their
// sources are file pages the kernel can drop (and that release_expert_sources hands back).
uint64_t packed_bytes_estimate(const std::vector<MoeBlock*>& blocks, const std::string& format) {
    uint64_t total = 0;
    for (MoeBlock* moe : blocks) {
        const std::string f = format == "auto" ? auto_expert_format(moe->experts) : format;
        if (f == "reference" || f == "gguf") continue;
        for (const Expert& e : moe->experts) {
            for (const Linear* l : {&e.gate, &e.up, &e.down}) {
                const uint64_t n = uint64_t(l->w.rows) * uint64_t(l->w.cols);
                if (f == "bf16" || f == "bf16-exact")
                    total += 2 * n;
                else if (f == "int8")
                    total += n + n / 8;  // + per-row scales and sums
                else if (f == "q4k")
                    total += l->w.ggml && l->w.ggml_type == GgmlType::Q4_K ? n * 19 / 32 : 0;
                else
                    total += n * 3 / 4;  // int4: nibbles + fp32 scale and min per 32 (g32)
            }
        }
    }
    return total;
}

int moe_parts(const std::vector<MoeBlock*>& blocks) {
    for (const MoeBlock* moe : blocks)
        if (moe->bank) return moe->bank->parts();
    return 1;
}

// Readies every MoE block's experts for the CPU operator (see LoadOptions::expert_format).
// Repacking formats go through the on-disk pack cache (cpu/moe/pack_cache.h): one file for all
// layers, read back in place on the next load instead of repacking.
void prepare_experts(DecoderModel& model, const std::string& format, const LoadProgress& progress) {
    static const bool simd_registered = [] {
        register_gguf_simd_kernels();
        return true;
    }();
    (void)simd_registered;
    std::vector<MoeBlock*> blocks;
    for (auto& layer : model.layers) {
        auto* moe = dynamic_cast<MoeBlock*>(layer.ffn.get());
        if (moe && !moe->experts.empty()) blocks.push_back(moe);
    }
    const std::optional<PackOptions> opt =
        format == "auto" ? std::nullopt : expert_pack_options(format);
    const std::string& path = model.info().path;
    std::string key;
    // bf16 and Q4_K repacking reorders bytes at memory speed: a cache file would only copy the
    // model.
    if (opt && opt->format != PackedFormat::BF16 && opt->format != PackedFormat::Q4K &&
        !blocks.empty() && !path.empty() && pack_cache_enabled()) {
        const std::vector<int> nodes = bank_part_nodes();
        key = pack_cache_key(model_weight_files(path), *opt, int(nodes.size()));
        auto cached = read_pack_cache(path, key, nodes);
        bool all = cached.size() == blocks.size();
        for (size_t i = 0; all && i < blocks.size(); ++i)
            all = blocks[i]->adopt_bank(cached[i], *opt);
        if (all) {
            model.set_expert_placement(format, moe_parts(blocks));
            return;
        }
        // A file that passed its checks but does not fit (or LoRA experts): repack below; the
        // blocks adopted so far are simply rebuilt.
    }
    const uint64_t need = packed_bytes_estimate(blocks, format);
    const uint64_t available = available_memory_bytes();
    if (available > 0 && need > available) {
        throw Error(path + ": repacking the routed experts (" +
                    (format == "auto" ? std::string("expert format auto") : "as " + format) +
                    ") needs about " + format_gib(need) + " of memory and " +
                    format_gib(available) +
                    " is available; free memory, or load with --expert-format gguf (GGUF files: "
                    "used in place, nothing copied) or reference");
    }
    std::string used;
    for (size_t i = 0; i < blocks.size(); ++i) {
        MoeBlock* moe = blocks[i];
        if (progress)
            progress(0.1 + 0.9 * double(i) / double(blocks.size()),
                     "preparing the experts of MoE layer " + std::to_string(i + 1) + " of " +
                         std::to_string(blocks.size()));
        // Adapters on routed experts (PEFT target_parameters): the fused operator reads plain
        // weights, so each adapted expert gets an fp32 copy with its terms merged in. The
        // reference path applies the terms as they are (training differentiates them there).
        if (format != "reference") {
            for (Expert& e : moe->experts)
                for (Linear* l : {&e.gate, &e.up, &e.down})
                    if (!l->lora.empty()) l->merge_lora();
        }
        const std::string f = format == "auto" ? auto_expert_format(moe->experts) : format;
        moe->prepare_experts(f);
        if (f != "reference" && f != "gguf") release_expert_sources(moe->experts, f == "q4k");
        used = used.empty() || used == f ? f : "mixed";
    }
    model.set_expert_placement(used, moe_parts(blocks));
    if (key.empty()) return;
    std::vector<const ExpertBank*> banks;
    for (MoeBlock* moe : blocks) banks.push_back(moe->bank.get());
    write_pack_cache(path, key, banks);
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
        if (options.progress) options.progress(0.0, "reading " + path);
        auto model = e.build(config, std::move(weights));
        model->finalize_info(path);
        if (!options.lora_path.empty()) {
            apply_lora(*model, load_lora_adapter(options.lora_path), options.lora_scale);
        }
        prepare_experts(*model, options.expert_format, options.progress);
        if (options.progress) options.progress(1.0, "loaded");
        if (options.deferred_experts < 0 ||
            (options.deferred_experts > 0 && model->info().experts_per_token > 0 &&
             options.deferred_experts >= model->info().experts_per_token)) {
            throw Error("deferred experts: " + std::to_string(options.deferred_experts) +
                        " must be at least 0 and below the model's " +
                        std::to_string(model->info().experts_per_token) + " experts per token");
        }
        model->deferred_experts = options.deferred_experts;
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
