#include "api/adapter_export.h"

#include "core/error.h"
#include "model/decoder_model.h"
#include "model/lora_adapter.h"
#include "model/model.h"
#include "train/lora_merge.h"

namespace moe {

MergedExport export_merged_model(const std::string& base_model, const std::string& adapter,
                                 const std::string& out_dir,
                                 const std::function<void(size_t, size_t)>& progress) {
    LoraAdapter a = load_lora_adapter(adapter);
    if (!a.fused_raw.empty()) {  // which expert weights they adapt: the model says
        LoadOptions lo;
        lo.expert_format = "reference";
        auto model = load_model(base_model, lo);
        auto* d = dynamic_cast<DecoderModel*>(model.get());
        if (!d) throw Error(base_model + ": not a per-layer decoder model");
        resolve_fused_experts(a, *d);
    }
    const train::MergeReport r =
        train::merge_lora_into_folder(base_model, a, 1.0f, out_dir, progress);
    return {r.merged, r.copied};
}

}  // namespace moe
