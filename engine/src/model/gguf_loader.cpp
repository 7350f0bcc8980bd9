#include "model/gguf_loader.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/linear.h"

namespace moe {

namespace {

using Json = nlohmann::json;

// llama.cpp tensor name (after "blk.N.") -> Hugging Face name (after "model.layers.N.").
// Expert tensors ("_exps") are 3-D and split per expert separately.
const std::map<std::string, std::string>& layer_names() {
    static const std::map<std::string, std::string> m = {
        {"attn_norm", "input_layernorm"},
        {"ffn_norm", "post_attention_layernorm"},
        {"post_attention_norm", "post_attention_layernorm"},  // gpt-oss
        {"attn_q", "self_attn.q_proj"},
        {"attn_k", "self_attn.k_proj"},
        {"attn_v", "self_attn.v_proj"},
        {"attn_output", "self_attn.o_proj"},
        {"attn_q_norm", "self_attn.q_norm"},
        {"attn_k_norm", "self_attn.k_norm"},
        {"attn_sinks", "self_attn.sinks"},
        {"attn_q_a", "self_attn.q_a_proj"},
        {"attn_q_a_norm", "self_attn.q_a_layernorm"},
        {"attn_q_b", "self_attn.q_b_proj"},
        {"attn_kv_a_mqa", "self_attn.kv_a_proj_with_mqa"},
        {"attn_kv_a_norm", "self_attn.kv_a_layernorm"},
        {"attn_kv_b", "self_attn.kv_b_proj"},
        {"attn_k_b", "self_attn.k_b_proj"},
        {"attn_v_b", "self_attn.v_b_proj"},
        {"ffn_gate", "mlp.gate_proj"},
        {"ffn_up", "mlp.up_proj"},
        {"ffn_down", "mlp.down_proj"},
        {"ffn_gate_inp", "mlp.gate"},
        {"exp_probs_b", "mlp.gate.e_score_correction_bias"},
        {"ffn_gate_shexp", "mlp.shared_experts.gate_proj"},
        {"ffn_up_shexp", "mlp.shared_experts.up_proj"},
        {"ffn_down_shexp", "mlp.shared_experts.down_proj"},
        {"ffn_gate_inp_shexp", "mlp.shared_expert_gate"},
    };
    return m;
}

std::string hf_arch(const GgufFile& f, const std::string& arch) {
    if (arch == "llama") return f.get_int("llama.expert_count", 0) > 0 ? "mixtral" : "llama";
    if (arch == "qwen3moe") return "qwen3_moe";
    if (arch == "qwen2moe") return "qwen2_moe";
    if (arch == "olmoe") return "olmoe";
    if (arch == "glm4moe") return "glm4_moe";
    if (arch == "gpt-oss") return "gpt_oss";
    if (arch == "deepseek2") {
        // Sigmoid gating (expert_gating_func 2) with a correction bias is DeepSeek-V3/Kimi-K2.
        return f.get_int("deepseek2.expert_gating_func", 1) == 2 ? "deepseek_v3" : "deepseek_v2";
    }
    throw Error(f.path() + ": unsupported GGUF architecture '" + arch +
                "' (supported: llama, qwen3moe, qwen2moe, olmoe, deepseek2, glm4moe, gpt-oss)");
}

// The Hugging Face spelling of a per-layer tensor for this architecture.
std::string hf_layer_suffix(const std::string& model_type, const std::string& rest) {
    const auto& m = layer_names();
    const auto dot = rest.rfind('.');
    const std::string base = rest.substr(0, dot), kind = rest.substr(dot + 1);  // weight | bias
    const auto it = m.find(base);
    if (it == m.end()) return {};
    std::string hf = it->second;
    if (model_type == "qwen2_moe" && hf.rfind("mlp.shared_experts.", 0) == 0) {
        hf.replace(0, 19, "mlp.shared_expert.");
    }
    if (model_type == "mixtral" && hf == "mlp.gate") hf = "block_sparse_moe.gate";
    if (model_type == "gpt_oss" && hf == "mlp.gate") hf = "mlp.router";
    if (hf.ends_with("e_score_correction_bias") || hf.ends_with("sinks")) return hf;
    return hf + "." + kind;
}

std::string expert_name(const std::string& model_type, const std::string& which) {
    if (model_type == "mixtral") {
        return which == "gate" ? "w1" : which == "up" ? "w3" : "w2";
    }
    return which + "_proj";
}

TensorView view_of(const GgufTensorInfo& t, const std::shared_ptr<const MappedFile>& map,
                   std::string name, std::vector<int64_t> shape) {
    TensorView v;
    v.name = std::move(name);
    v.shape = std::move(shape);
    v.ggml = t.type;
    DType plain;
    if (ggml_type_to_dtype(t.type, plain)) v.dtype = plain;
    v.data = t.data;
    v.nbytes = t.nbytes;
    v.file = map;
    return v;
}

void set_if(Json& j, const GgufFile& f, const std::string& key, const char* hf_key) {
    if (const GgufValue* v = f.find(key)) {
        if (v->type == GgufType::FLOAT32 || v->type == GgufType::FLOAT64) {
            j[hf_key] = v->f;
        } else if (v->type == GgufType::BOOL) {
            j[hf_key] = v->u != 0;
        } else if (v->type == GgufType::ARRAY) {
            // Per-layer arrays (e.g. feed_forward_length): the builders take one value.
            const auto a = f.get_int_array(key);
            if (!a.empty()) j[hf_key] = *std::max_element(a.begin(), a.end());
        } else {
            j[hf_key] = f.get_int(key, 0);
        }
    }
}

Json config_from_metadata(const GgufFile& f, const std::string& arch, const std::string& type) {
    const std::string p = arch + ".";
    Json j = Json::object();
    j["model_type"] = type;
    j["hidden_size"] = f.require_int(p + "embedding_length");
    const int64_t blocks = f.require_int(p + "block_count");
    const int64_t nextn = f.get_int(p + "nextn_predict_layers", 0);
    j["num_hidden_layers"] = blocks - nextn;  // multi-token-prediction layers are not run
    j["num_attention_heads"] = f.require_int(p + "attention.head_count");
    set_if(j, f, p + "attention.head_count_kv", "num_key_value_heads");
    set_if(j, f, p + "feed_forward_length", "intermediate_size");
    set_if(j, f, p + "context_length", "max_position_embeddings");
    j["rms_norm_eps"] = f.get_float(p + "attention.layer_norm_rms_epsilon", 1e-6);
    set_if(j, f, p + "expert_count", "num_experts");
    set_if(j, f, p + "expert_count", "num_local_experts");
    set_if(j, f, p + "expert_count", "n_routed_experts");
    set_if(j, f, p + "expert_used_count", "num_experts_per_tok");
    set_if(j, f, p + "expert_feed_forward_length", "moe_intermediate_size");
    set_if(j, f, p + "expert_shared_feed_forward_length", "shared_expert_intermediate_size");
    set_if(j, f, p + "expert_shared_count", "n_shared_experts");
    set_if(j, f, p + "leading_dense_block_count", "first_k_dense_replace");
    set_if(j, f, p + "expert_weights_scale", "routed_scaling_factor");
    set_if(j, f, p + "expert_weights_norm", "norm_topk_prob");
    set_if(j, f, p + "expert_group_count", "n_group");
    set_if(j, f, p + "expert_group_used_count", "topk_group");
    set_if(j, f, p + "attention.q_lora_rank", "q_lora_rank");
    set_if(j, f, p + "attention.kv_lora_rank", "kv_lora_rank");
    set_if(j, f, p + "attention.sliding_window", "sliding_window");

    // Rotary embedding.
    Json rope = {{"rope_type", "default"},
                 {"rope_theta", f.get_float(p + "rope.freq_base", 10000.0)}};
    const std::string scaling = f.get_string(p + "rope.scaling.type", "none");
    if (scaling == "linear" || scaling == "yarn") {
        rope["rope_type"] = scaling;
        rope["factor"] = f.get_float(p + "rope.scaling.factor", 1.0);
        set_if(rope, f, p + "rope.scaling.original_context_length",
               "original_max_position_embeddings");
        set_if(rope, f, p + "rope.scaling.yarn_beta_fast", "beta_fast");
        set_if(rope, f, p + "rope.scaling.yarn_beta_slow", "beta_slow");
        if (arch == "deepseek2" && f.has(p + "rope.scaling.yarn_log_multiplier")) {
            // llama.cpp stores 0.1 * mscale_all_dim; DeepSeek sets mscale = mscale_all_dim.
            const double m = f.get_float(p + "rope.scaling.yarn_log_multiplier", 0.0) / 0.1;
            rope["mscale_all_dim"] = m;
            rope["mscale"] = m;
        }
    } else if (scaling != "none") {
        throw Error(f.path() + ": unsupported rope scaling type '" + scaling + "'");
    }
    const int64_t heads = j["num_attention_heads"].get<int64_t>();
    const int64_t head_dim =
        f.get_int(p + "attention.key_length", j["hidden_size"].get<int64_t>() / heads);
    if (arch != "deepseek2") {
        j["head_dim"] = head_dim;
        const int64_t rot = f.get_int(p + "rope.dimension_count", head_dim);
        if (rot != head_dim) rope["partial_rotary_factor"] = double(rot) / double(head_dim);
    } else {
        const int64_t rope_dim = f.require_int(p + "rope.dimension_count");
        j["qk_rope_head_dim"] = rope_dim;
        // Newer files give the per-head MLA sizes explicitly; older ones in key/value_length.
        const int64_t k_mla = f.get_int(p + "attention.key_length_mla", head_dim);
        j["qk_nope_head_dim"] = k_mla - rope_dim;
        j["v_head_dim"] =
            f.get_int(p + "attention.value_length_mla", f.get_int(p + "attention.value_length", 0));
        j["num_key_value_heads"] = heads;
        j["topk_method"] = j.value("n_group", 1) > 1 ? "group_limited_greedy" : "greedy";
    }
    j["rope_parameters"] = rope;
    // llama.cpp rotates adjacent pairs for these; its converter permuted Llama's q/k rows so
    // that this matches the Hugging Face model.
    j["moe_rope_interleaved"] = arch == "llama" || arch == "deepseek2";
    if (f.has("tokenizer.ggml.eos_token_id"))
        j["eos_token_id"] = f.get_int("tokenizer.ggml.eos_token_id", 0);
    if (f.has("tokenizer.ggml.bos_token_id"))
        j["bos_token_id"] = f.get_int("tokenizer.ggml.bos_token_id", 0);
    if (arch == "gpt-oss") {
        rope["truncate"] = false;  // gpt-oss's YaRN keeps the fractional correction range
        j["rope_parameters"] = rope;
        Json types = Json::array();
        for (int64_t i = 0; i < blocks; ++i)
            types.push_back(i % 2 == 0 ? "sliding_attention" : "full_attention");
        j["layer_types"] = types;
    }
    return j;
}

}  // namespace

std::string hf_module_name(const std::string& gguf_arch, const std::string& gguf_name) {
    if (gguf_name == "output") return "lm_head";
    if (gguf_name.rfind("blk.", 0) != 0) return {};
    const auto dot = gguf_name.find('.', 4);
    if (dot == std::string::npos) return {};
    const std::string layer = gguf_name.substr(4, dot - 4);
    const std::string suffix = hf_layer_suffix("", gguf_name.substr(dot + 1) + ".weight");
    if (suffix.empty()) return {};
    return "model.layers." + layer + "." + suffix.substr(0, suffix.size() - 7);
}

std::string gguf_module_stem(const std::string& hf_module) {
    if (hf_module == "lm_head") return "output";
    const std::string lead = "model.layers.";
    if (hf_module.rfind(lead, 0) != 0) return {};
    const auto dot = hf_module.find('.', lead.size());
    if (dot == std::string::npos) return {};
    const std::string layer = hf_module.substr(lead.size(), dot - lead.size());
    const std::string suffix = hf_module.substr(dot + 1);
    for (const auto& [gguf, hf] : layer_names())
        if (hf == suffix) return "blk." + layer + "." + gguf;
    return {};
}

GgufModelSource open_gguf_model(const std::string& path) {
    GgufModelSource src;
    src.file = GgufFile::open(path);
    const GgufFile& f = *src.file;
    const std::string arch = f.require_string("general.architecture");
    const std::string type = hf_arch(f, arch);
    Json cfg = config_from_metadata(f, arch, type);

    WeightStore& ws = src.weights = WeightStore::empty(path);
    const auto& map = f.mapping();
    std::vector<int64_t> dense_layers;
    int64_t vocab = 0;
    for (const GgufTensorInfo& t : f.tensors()) {
        const std::vector<int64_t> shape = t.shape();
        if (t.name == "token_embd.weight") {
            vocab = shape.at(0);
            ws.add_view(view_of(t, map, "model.embed_tokens.weight", shape));
        } else if (t.name == "output_norm.weight") {
            ws.add_view(view_of(t, map, "model.norm.weight", shape));
        } else if (t.name == "output.weight") {
            ws.add_view(view_of(t, map, "lm_head.weight", shape));
        } else if (t.name == "rope_freqs.weight") {
            TensorView v = view_of(t, map, "rope_freqs", shape);
            cfg["moe_rope_freq_factors"] = tensor_to_f32(v);
        } else if (t.name.rfind("blk.", 0) == 0) {
            const auto dot = t.name.find('.', 4);
            const std::string layer = t.name.substr(4, dot - 4);
            const std::string rest = t.name.substr(dot + 1);
            const std::string prefix = "model.layers." + layer + ".";
            const auto exps = rest.find("_exps.");
            if (exps != std::string::npos) {
                // [E, rows, cols] (or [E, n] for biases): one view per expert.
                const std::string which = rest.substr(4, exps - 4);  // gate | up | down
                const std::string kind = rest.substr(exps + 6);      // weight | bias
                const int64_t E = shape.at(0);
                const std::vector<int64_t> per(shape.begin() + 1, shape.end());
                const size_t bytes = t.nbytes / size_t(E);
                const std::string stem =
                    prefix + (type == "mixtral" ? "block_sparse_moe" : "mlp") + ".experts.";
                for (int64_t e = 0; e < E; ++e) {
                    TensorView v = view_of(
                        t, map,
                        stem + std::to_string(e) + "." + expert_name(type, which) + "." + kind,
                        per);
                    v.data = t.data + size_t(e) * bytes;
                    v.nbytes = bytes;
                    ws.add_view(std::move(v));
                }
                continue;
            }
            std::string suffix = hf_layer_suffix(type, rest);
            if (suffix.empty())
                continue;  // tensors no builder reads (e.g. rope factors) stay unmapped
            std::vector<int64_t> s = shape;
            if (suffix == "mlp.shared_expert_gate.weight" && s.size() == 1) s = {1, s[0]};
            if (s.size() == 3) s = {s[0] * s[1], s[2]};  // MLA's per-head k_b / v_b as one matrix
            ws.add_view(view_of(t, map, prefix + suffix, s));
        }
    }
    const int64_t layers = cfg["num_hidden_layers"].get<int64_t>();
    for (int64_t i = 0; i < layers; ++i) {
        const std::string gate =
            type == "mixtral" ? ".block_sparse_moe.gate.weight" : ".mlp.gate.weight";
        if (!ws.has("model.layers." + std::to_string(i) + gate)) dense_layers.push_back(i);
    }
    if (type == "qwen3_moe" || type == "qwen2_moe") cfg["mlp_only_layers"] = dense_layers;
    // llama.cpp fixes the top-k renormalisation of these architectures in code; a file of ours
    // may state it (expert_weights_norm) for checkpoints that differ.
    if (!f.has(arch + ".expert_weights_norm")) {
        if (type == "qwen3_moe" || type == "mixtral") cfg["norm_topk_prob"] = true;
        if (type == "qwen2_moe" || type == "olmoe") cfg["norm_topk_prob"] = false;
    }
    if (type == "qwen2_moe") cfg["qkv_bias"] = ws.has("model.layers.0.self_attn.q_proj.bias");
    if (type == "glm4_moe") {
        cfg["use_qk_norm"] = ws.has("model.layers.0.self_attn.q_norm.weight");
        cfg["attention_bias"] = ws.has("model.layers.0.self_attn.q_proj.bias");
    }
    if (type == "gpt_oss" || type == "llama") {
        cfg["attention_bias"] = ws.has("model.layers.0.self_attn.q_proj.bias");
    }
    if (vocab == 0) throw Error(path + ": missing tensor 'token_embd.weight'");
    cfg["vocab_size"] = vocab;
    cfg["tie_word_embeddings"] = !ws.has("lm_head.weight");
    src.config = HfConfig(cfg, path + " (GGUF metadata)");
    return src;
}

}  // namespace moe
