#include "api/adapter_export.h"

#include "core/error.h"
#include "model/decoder_model.h"
#include "model/lora_adapter.h"
#include "model/model.h"
#include "train/gguf_adapter_export.h"
#include "train/lora_merge.h"
#include "train/peft_export.h"
#include "train/peft_layout.h"

namespace moe {

namespace {

// The base model to read an adapter against: sizes and names only, nothing repacked.
std::unique_ptr<Model> reference_model(const std::string& path) {
    LoadOptions lo;
    lo.expert_format = "reference";
    auto model = load_model(path, lo);
    if (!dynamic_cast<DecoderModel*>(model.get()))
        throw Error(path + ": not a per-layer decoder model");
    return model;
}

}  // namespace

MergedExport export_merged_model(const std::string& base_model, const std::string& adapter,
                                 const std::string& out_dir,
                                 const std::function<void(size_t, size_t)>& progress) {
    LoraAdapter a = load_lora_adapter(adapter);
    if (!a.fused_raw.empty()) {  // which expert weights they adapt: the model says
        auto model = reference_model(base_model);
        resolve_fused_experts(a, dynamic_cast<DecoderModel&>(*model));
    }
    const train::MergeReport r =
        train::merge_lora_into_folder(base_model, a, 1.0f, out_dir, progress);
    return {r.merged, r.copied};
}

size_t convert_adapter(const std::string& base_model, const std::string& adapter,
                       const std::string& format, const std::string& out, float scale) {
    if (format != "peft" && format != "gguf")
        throw Error("adapter format: expected peft or gguf, got '" + format + "'");
    LoraAdapter a = load_lora_adapter(adapter);
    auto model = reference_model(base_model);
    auto& d = dynamic_cast<DecoderModel&>(*model);
    if (!a.fused_raw.empty()) resolve_fused_experts(a, d);
    apply_lora(d, a, scale);
    const train::PeftTensors values = train::peft_values(a, d);
    if (format == "peft") {
        train::save_peft_adapter(out, a, values);
    } else {
        train::save_gguf_adapter(out, a, values, d);
    }
    return a.layers.size();
}

}  // namespace moe
