#pragma once
// LoRA adapters applied to a loaded model at inference time: PEFT folders
// (adapter_config.json + adapter_model.safetensors) and, through the GGUF loader, llama.cpp
// adapters. Each term adds scale * B(A x) to the output of the layer it targets.
#include <map>
#include <string>
#include <vector>

namespace moe {

class DecoderModel;

struct LoraPair {
    int64_t rank = 0, in = 0, out = 0;
    std::vector<float> a;         // [rank, in]
    std::vector<float> b;         // [out, rank]
    float alpha = 0.0f;           // scaling numerator (PEFT lora_alpha; GGUF adapter.lora.alpha)
    bool alpha_is_scale = false;  // GGUF adapters without alpha: the scale is 1 (llama.cpp)
};

// PEFT's LoRA on a fused 3-D expert parameter (target_parameters, e.g. transformers 5's
// experts.gate_up_proj [E, hidden, 2 * inter] and experts.down_proj [E, inter, hidden], both
// [experts, in, out]): A [E * r, in] (rows e*r .. e*r+r-1 are expert e's), B [out, r * E]
// (column ri * E + e is expert e's ri-th), delta[e] = scale * (B_e A_e)^T. Which parameter a
// pair adapts is told by its shapes (the saved target_parameters list does not give PEFT's
// nesting order), so the pairs stay raw until resolve_fused_experts() sees the model; it
// splits them into per-expert pairs of experts.N.gate_proj / up_proj (the first and second
// half of gate_up's outputs, sharing A_e) / down_proj, and records how to put them back.
struct FusedExpertPair {
    std::string peft_module;  // e.g. model.layers.1.mlp.experts.base_layer
    std::vector<float> a, b;
    int64_t a_rows = 0, a_cols = 0, b_rows = 0, b_cols = 0;
    int64_t rank_gate_up = 0, rank_down = 0;  // rank_pattern, else r
    float alpha_gate_up = 0, alpha_down = 0;  // alpha_pattern, else lora_alpha
};
struct FusedExpertLora {
    std::string peft_module;  // e.g. model.layers.1.mlp.experts.base_layer
    std::string experts;      // the model's prefix of that layer's experts, e.g.
                              // model.layers.1.mlp.experts (Mixtral: ...block_sparse_moe.experts)
    std::string param;        // gate_up_proj or down_proj
    int64_t experts_count = 0, rank = 0, in = 0, out = 0;
    std::string gate = "gate_proj", up = "up_proj", down = "down_proj";  // the model's names
    // The model's layer of expert e's part: experts.e.gate (or up, down).
    std::string member(int64_t e, const std::string& part) const {
        return experts + "." + std::to_string(e) + "." + part;
    }
};

struct LoraAdapter {
    std::string origin;
    bool use_rslora = false;                 // scale alpha / sqrt(r) instead of alpha / r
    std::map<std::string, LoraPair> layers;  // by module name, e.g. model.layers.0.self_attn.q_proj
    std::vector<FusedExpertPair> fused_raw;  // until resolve_fused_experts()
    std::vector<FusedExpertLora> fused;      // which `layers` came from fused pairs
};

// Reads a PEFT adapter folder (target_modules, and target_parameters on fused experts).
// Throws moe::Error naming the file and the tensor on malformed input, and for adapter kinds
// not supported (DoRA, target_parameters other than gate_up_proj / down_proj).
LoraAdapter load_peft_adapter(const std::string& dir);

// Reads a llama.cpp LoRA adapter (GGUF with general.type = adapter, adapter.type = lora):
// tensors blk.N.<name>.weight.lora_a / lora_b, scaled by adapter.lora.alpha / rank.
LoraAdapter load_gguf_adapter(const std::string& path);

// A PEFT folder or a GGUF adapter file.
LoraAdapter load_lora_adapter(const std::string& path);

// Splits the adapter's fused expert pairs into per-expert layers of `model` (see
// FusedExpertLora). Throws moe::Error naming the tensor when a pair fits neither gate_up_proj
// nor down_proj of the model's experts.
void resolve_fused_experts(LoraAdapter& adapter, const DecoderModel& model);

// Adds the adapter's terms to the model's layers at `scale` (the user's multiplier), fused
// expert pairs resolved first. Every adapter layer must match a model layer of the same shape,
// or moe::Error names it.
void apply_lora(DecoderModel& model, const LoraAdapter& adapter, float scale);

}  // namespace moe
