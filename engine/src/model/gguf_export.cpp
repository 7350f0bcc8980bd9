#include "model/gguf_export.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/parallel.h"
#include "cpu/quants.h"
#include "formats/gguf.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "model/linear.h"
#include "model/rope.h"
#include "tokenizer/gguf_vocab.h"

namespace moe {

namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

// Hugging Face per-layer suffix -> llama.cpp name (without "blk.N." and ".weight").
const std::map<std::string, std::string>& to_gguf_names() {
    static const std::map<std::string, std::string> m = {
        {"input_layernorm", "attn_norm"},
        {"post_attention_layernorm", "ffn_norm"},
        {"self_attn.q_proj", "attn_q"},
        {"self_attn.k_proj", "attn_k"},
        {"self_attn.v_proj", "attn_v"},
        {"self_attn.o_proj", "attn_output"},
        {"self_attn.q_norm", "attn_q_norm"},
        {"self_attn.k_norm", "attn_k_norm"},
        {"self_attn.sinks", "attn_sinks"},
        {"self_attn.q_a_proj", "attn_q_a"},
        {"self_attn.q_a_layernorm", "attn_q_a_norm"},
        {"self_attn.q_b_proj", "attn_q_b"},
        {"self_attn.kv_a_proj_with_mqa", "attn_kv_a_mqa"},
        {"self_attn.kv_a_layernorm", "attn_kv_a_norm"},
        {"mlp.gate_proj", "ffn_gate"},
        {"mlp.up_proj", "ffn_up"},
        {"mlp.down_proj", "ffn_down"},
        {"mlp.gate", "ffn_gate_inp"},
        {"block_sparse_moe.gate", "ffn_gate_inp"},
        {"mlp.router", "ffn_gate_inp"},
        {"mlp.shared_experts.gate_proj", "ffn_gate_shexp"},
        {"mlp.shared_experts.up_proj", "ffn_up_shexp"},
        {"mlp.shared_experts.down_proj", "ffn_down_shexp"},
        {"mlp.shared_expert.gate_proj", "ffn_gate_shexp"},
        {"mlp.shared_expert.up_proj", "ffn_up_shexp"},
        {"mlp.shared_expert.down_proj", "ffn_down_shexp"},
        {"mlp.shared_expert_gate", "ffn_gate_inp_shexp"},
    };
    return m;
}

struct ArchInfo {
    std::string gguf;  // llama.cpp architecture
    bool permute_qk = false;
};

ArchInfo arch_of(const HfConfig& c) {
    const std::string t = c.model_type();
    if (t == "llama" || t == "mistral" || t == "mixtral") return {"llama", true};
    if (t == "qwen3_moe") return {"qwen3moe"};
    if (t == "qwen2_moe") return {"qwen2moe"};
    if (t == "olmoe") return {"olmoe"};
    if (t == "deepseek_v2" || t == "deepseek_v3" || t == "kimi_k2") return {"deepseek2"};
    if (t == "glm4_moe") return {"glm4moe"};
    if (t == "gpt_oss") return {"gpt-oss"};
    throw Error(c.origin() + ": cannot convert model_type '" + t + "' to GGUF");
}

// One tensor to write: f32 values in row-major [rows, cols] (or 1-D), its ggml shape.
struct Pending {
    std::string name;
    std::vector<int64_t> ne;  // ggml order
    std::vector<float> values;
    bool keep_f32 = false;
};

// Llama's rotary pairs are (i, i + d/2) in Hugging Face and adjacent in llama.cpp: reorder rows
// per head as convert_hf_to_gguf.py's permute().
std::vector<float> permute_rows(const std::vector<float>& w, int64_t rows, int64_t cols,
                                int64_t heads) {
    std::vector<float> out(w.size());
    const int64_t per = rows / heads, half = per / 2;
    for (int64_t h = 0; h < heads; ++h) {
        for (int64_t j = 0; j < half; ++j) {
            for (int64_t two = 0; two < 2; ++two) {
                const int64_t src = h * per + two * half + j;  // [h][two][j]
                const int64_t dst = h * per + j * 2 + two;     // [h][j][two]
                std::copy_n(&w[size_t(src * cols)], cols, &out[size_t(dst * cols)]);
            }
        }
    }
    return out;
}

// A tensor's values with FP8 block scales applied (DeepSeek-V3 checkpoints).
std::vector<float> values_of(const WeightStore& ws, const TensorView& t) {
    if (t.dtype != DType::F8_E4M3 || t.shape.size() != 2) return tensor_to_f32(t);
    const Linear l = load_linear(ws, t.name, t.shape[0], t.shape[1]);
    std::vector<float> v(static_cast<size_t>(t.numel()));
    for (int64_t r = 0; r < t.shape[0]; ++r) l.w.row_to_f32(r, &v[size_t(r * t.shape[1])]);
    return v;
}

GgmlType fallback_type(GgmlType t) {
    switch (t) {
        case GgmlType::Q2_K:
        case GgmlType::Q3_K:
            return GgmlType::Q4_0;
        case GgmlType::Q4_K:
            return GgmlType::Q5_0;
        case GgmlType::Q5_K:
            return GgmlType::Q5_1;
        case GgmlType::Q6_K:
            return GgmlType::Q8_0;
        case GgmlType::IQ4_XS:
            return GgmlType::IQ4_NL;
        default:
            return GgmlType::F16;
    }
}

std::vector<uint8_t> encode(const std::vector<float>& v, int64_t cols, GgmlType type) {
    const int64_t rows = int64_t(v.size()) / cols;
    const size_t rb = ggml_row_size(type, cols);
    std::vector<uint8_t> out(rb * size_t(rows));
    parallel_for(rows, 16, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
            quantize_row(type, &v[size_t(r * cols)], &out[size_t(r) * rb], cols);
    });
    return out;
}

Json read_json(const fs::path& p) {
    std::ifstream in(p);
    if (!in) return Json();
    try {
        return Json::parse(in);
    } catch (const Json::exception& e) {
        throw Error(p.string() + ": not valid JSON: " + e.what());
    }
}

// tokenizer.json -> tokenizer.ggml.*; returns what was written.
std::string add_tokenizer(GgufWriter& w, const std::string& dir, const HfConfig& c) {
    const Json tok = read_json(fs::path(dir) / "tokenizer.json");
    if (tok.is_null()) {
        w.add_string("tokenizer.ggml.model", "none");
        return "none";
    }
    const Json& model = tok["model"];
    if (model.value("type", "") != "BPE") {
        throw Error(dir + "/tokenizer.json: only BPE tokenizers convert to GGUF (found '" +
                    model.value("type", "") + "')");
    }
    std::vector<std::string> tokens;
    auto put = [&](const std::string& s, int64_t id) {
        if (id < 0) return;
        if (size_t(id) >= tokens.size()) tokens.resize(size_t(id) + 1);
        tokens[size_t(id)] = s;
    };
    for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it)
        put(it.key(), it->get<int64_t>());
    std::map<int64_t, bool> added;  // id -> special
    for (const auto& a : tok.value("added_tokens", Json::array())) {
        put(a["content"].get<std::string>(), a["id"].get<int64_t>());
        added[a["id"].get<int64_t>()] = a.value("special", false);
    }
    const int64_t n_vocab = std::max<int64_t>(c.get_int("vocab_size", 0), int64_t(tokens.size()));
    tokens.resize(size_t(n_vocab));
    std::vector<int64_t> types(tokens.size(), int64_t(GgufTokenType::Normal));
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (tokens[i].empty()) {
            tokens[i] = "[PAD" + std::to_string(i) + "]";
            types[i] = int64_t(GgufTokenType::Unused);
        }
    }
    for (const auto& [id, special] : added) {
        types[size_t(id)] = int64_t(special ? GgufTokenType::Control : GgufTokenType::UserDefined);
    }
    const bool byte_fallback = model.value("byte_fallback", false);
    std::string kind;
    if (byte_fallback) {
        // SentencePiece-style vocabulary (Llama 2, Mistral): llama.cpp's SPM tokenizer.
        for (size_t i = 0; i < tokens.size(); ++i) {
            const auto& t = tokens[i];
            if (t.size() == 6 && t.rfind("<0x", 0) == 0 && t.back() == '>')
                types[i] = int64_t(GgufTokenType::Byte);
        }
        w.add_string("tokenizer.ggml.model", "llama");
        w.add_string("tokenizer.ggml.pre", "default");
        w.add("tokenizer.ggml.scores",
              GgufValue::array(GgufType::FLOAT32, std::vector<double>(tokens.size(), -1000.0)));
        kind = "llama";
    } else {
        // Byte-level BPE: name the pre-tokenizer by its regex, as llama.cpp knows it.
        const std::string pre_json = tok.value("pre_tokenizer", Json()).dump();
        std::string pre = "gpt-2";
        if (pre_json.find("\\\\p{N}{1,3}") != std::string::npos &&
            pre_json.find("Sequence") != std::string::npos &&
            pre_json.find("\\u4e00") != std::string::npos) {
            pre = "deepseek-v3";
        } else if (pre_json.find("[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}") !=
                   std::string::npos) {
            pre = "llama-bpe";
        } else if (pre_json.find("[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}|") !=
                   std::string::npos) {
            pre = "qwen2";
        } else if (pre_json.find("\"Split\"") != std::string::npos) {
            throw Error(dir + "/tokenizer.json: pre-tokenizer not recognised for GGUF (known: " +
                        "gpt-2, llama-bpe, qwen2, deepseek-v3)");
        }
        std::vector<std::string> merges;
        for (const auto& m : model.value("merges", Json::array())) {
            merges.push_back(m.is_string()
                                 ? m.get<std::string>()
                                 : m[0].get<std::string>() + " " + m[1].get<std::string>());
        }
        w.add_string("tokenizer.ggml.model", "gpt2");
        w.add_string("tokenizer.ggml.pre", pre);
        w.add("tokenizer.ggml.merges", GgufValue::array(merges));
        kind = "gpt2 (" + pre + ")";
    }
    w.add("tokenizer.ggml.tokens", GgufValue::array(tokens));
    w.add("tokenizer.ggml.token_type", GgufValue::array(GgufType::INT32, types));
    // Special tokens and flags from tokenizer_config.json / config.json.
    const Json tc = read_json(fs::path(dir) / "tokenizer_config.json");
    auto id_of = [&](const Json& v) -> int64_t {
        const std::string s = v.is_string()   ? v.get<std::string>()
                              : v.is_object() ? v.value("content", "")
                                              : "";
        for (size_t i = 0; i < tokens.size(); ++i) {
            if (!s.empty() && tokens[i] == s) return int64_t(i);
        }
        return -1;
    };
    int64_t bos = tc.is_object() && tc.contains("bos_token") ? id_of(tc["bos_token"]) : -1;
    int64_t eos = tc.is_object() && tc.contains("eos_token") ? id_of(tc["eos_token"]) : -1;
    if (bos < 0 && c.bos_token_id()) bos = *c.bos_token_id();
    const auto eos_ids = c.eos_token_ids();
    if (eos < 0 && !eos_ids.empty()) eos = eos_ids.front();
    if (bos >= 0) w.add_u32("tokenizer.ggml.bos_token_id", uint32_t(bos));
    if (eos >= 0) w.add_u32("tokenizer.ggml.eos_token_id", uint32_t(eos));
    if (tc.is_object() && tc.contains("pad_token")) {
        const int64_t pad = id_of(tc["pad_token"]);
        if (pad >= 0) w.add_u32("tokenizer.ggml.padding_token_id", uint32_t(pad));
    }
    if (byte_fallback) {
        w.add_bool("tokenizer.ggml.add_bos_token",
                   tc.is_object() ? tc.value("add_bos_token", true) : true);
        // A byte vocabulary without Metaspace has no leading-space rule.
        w.add_bool(
            "tokenizer.ggml.add_space_prefix",
            tok.value("normalizer", Json()).dump().find("\\u2581") != std::string::npos ||
                tok.value("pre_tokenizer", Json()).dump().find("Metaspace") != std::string::npos);
    } else {
        w.add_bool("tokenizer.ggml.add_bos_token",
                   tc.is_object() && tc.value("add_bos_token", false));
    }
    if (tc.is_object() && tc.contains("chat_template") && tc["chat_template"].is_string()) {
        w.add_string("tokenizer.chat_template", tc["chat_template"].get<std::string>());
    } else if (fs::exists(fs::path(dir) / "chat_template.jinja")) {
        std::ifstream in(fs::path(dir) / "chat_template.jinja");
        w.add_string("tokenizer.chat_template",
                     std::string(std::istreambuf_iterator<char>(in), {}));
    }
    return kind;
}

void add_hparams(GgufWriter& w, const HfConfig& c, const ArchInfo& a, const WeightStore& ws) {
    const std::string p = a.gguf + ".";
    const int64_t hidden = c.require_int("hidden_size"),
                  layers = c.require_int("num_hidden_layers");
    const int64_t heads = c.require_int("num_attention_heads");
    w.add_string("general.architecture", a.gguf);
    w.add_string("general.name", fs::path(c.origin()).parent_path().filename().string());
    w.add_u32(p + "context_length", uint32_t(c.get_int("max_position_embeddings", 4096)));
    w.add_u32(p + "embedding_length", uint32_t(hidden));
    w.add_u32(p + "block_count", uint32_t(layers));
    w.add_u32(p + "feed_forward_length", uint32_t(c.get_int("intermediate_size", 0)));
    w.add_u32(p + "attention.head_count", uint32_t(heads));
    w.add_f32(p + "attention.layer_norm_rms_epsilon", float(c.get_double("rms_norm_eps", 1e-6)));
    const RopeConfig rope = c.rope();
    w.add_f32(p + "rope.freq_base", float(rope.theta));
    if (rope.type == "linear" || rope.type == "yarn") {
        w.add_string(p + "rope.scaling.type", rope.type);
        w.add_f32(p + "rope.scaling.factor", float(rope.factor));
        if (rope.type == "yarn") {
            w.add_u32(p + "rope.scaling.original_context_length",
                      uint32_t(rope.original_max_position_embeddings));
            if (a.gguf == "deepseek2" && rope.mscale_all_dim != 0.0) {
                w.add_f32(p + "rope.scaling.yarn_log_multiplier", float(0.1 * rope.mscale_all_dim));
            }
        }
    } else if (rope.type != "default" && rope.type != "llama3") {
        throw Error(c.origin() + ": rope type '" + rope.type + "' has no GGUF form here");
    }
    const int64_t experts =
        c.get_int_any({"num_experts", "num_local_experts", "n_routed_experts"}, 0);
    if (experts > 0) {
        w.add_u32(p + "expert_count", uint32_t(experts));
        w.add_u32(p + "expert_used_count", uint32_t(c.require_int("num_experts_per_tok")));
    }
    if (a.gguf == "deepseek2") {
        const int64_t rope_dim = c.require_int("qk_rope_head_dim"),
                      R = c.require_int("kv_lora_rank");
        w.add_u32(p + "attention.head_count_kv", 1);  // MLA runs as MQA over the latent
        w.add_u32(p + "vocab_size", uint32_t(c.require_int("vocab_size")));
        w.add_u32(p + "leading_dense_block_count", uint32_t(c.get_int("first_k_dense_replace", 0)));
        w.add_u32(p + "attention.q_lora_rank",
                  uint32_t(c.get_int("q_lora_rank", 0)));  // 0: plain q_proj
        w.add_u32(p + "attention.kv_lora_rank", uint32_t(R));
        w.add_u32(p + "attention.key_length", uint32_t(R + rope_dim));
        w.add_u32(p + "attention.value_length", uint32_t(R));
        w.add_u32(p + "attention.key_length_mla",
                  uint32_t(c.require_int("qk_nope_head_dim") + rope_dim));
        w.add_u32(p + "attention.value_length_mla", uint32_t(c.require_int("v_head_dim")));
        w.add_u32(p + "rope.dimension_count", uint32_t(rope_dim));
        w.add_u32(p + "expert_feed_forward_length",
                  uint32_t(c.get_int("moe_intermediate_size", 0)));
        w.add_u32(p + "expert_shared_count", uint32_t(c.get_int("n_shared_experts", 0)));
        w.add_f32(p + "expert_weights_scale", float(c.get_double("routed_scaling_factor", 1.0)));
        const bool v3 = c.model_type() != "deepseek_v2";
        w.add_bool(p + "expert_weights_norm", v3 && c.get_bool("norm_topk_prob", false));
        w.add_u32(p + "expert_gating_func", v3 ? 2 : 1);  // sigmoid : softmax
        const bool grouped =
            !v3 ? c.get_string("topk_method", "greedy") == "group_limited_greedy" : true;
        if (grouped && c.get_int("n_group", 1) > 1) {
            w.add_u32(p + "expert_group_count", uint32_t(c.get_int("n_group", 1)));
            w.add_u32(p + "expert_group_used_count", uint32_t(c.get_int("topk_group", 1)));
        }
        return;
    }
    const int64_t head_dim = c.get_int("head_dim", hidden / heads);
    w.add_u32(p + "attention.head_count_kv", uint32_t(c.get_int("num_key_value_heads", heads)));
    w.add_u32(p + "attention.key_length", uint32_t(head_dim));
    w.add_u32(p + "attention.value_length", uint32_t(head_dim));
    w.add_u32(p + "rope.dimension_count", uint32_t(double(head_dim) * rope.partial_rotary_factor));
    if (a.gguf == "qwen3moe" || a.gguf == "qwen2moe" || a.gguf == "glm4moe" ||
        a.gguf == "gpt-oss" || a.gguf == "olmoe") {
        w.add_u32(p + "expert_feed_forward_length",
                  uint32_t(c.get_int("moe_intermediate_size", c.get_int("intermediate_size", 0))));
    }
    if (experts > 0 && a.gguf != "glm4moe" && c.has("norm_topk_prob")) {
        w.add_bool(p + "expert_weights_norm", c.get_bool("norm_topk_prob", false));
    }
    if (a.gguf == "qwen2moe") {
        w.add_u32(p + "expert_shared_feed_forward_length",
                  uint32_t(c.get_int("shared_expert_intermediate_size", 0)));
    }
    if (a.gguf == "glm4moe") {
        w.add_u32(p + "leading_dense_block_count", uint32_t(c.get_int("first_k_dense_replace", 0)));
        w.add_u32(p + "expert_shared_count", uint32_t(c.get_int("n_shared_experts", 0)));
        w.add_f32(p + "expert_weights_scale", float(c.get_double("routed_scaling_factor", 1.0)));
        w.add_bool(p + "expert_weights_norm", c.get_bool("norm_topk_prob", true));
        w.add_u32(p + "expert_gating_func", 2);
        w.add_u32(p + "nextn_predict_layers", 0);  // MTP layers are not exported
        if (c.get_int("n_group", 1) > 1) {
            w.add_u32(p + "expert_group_count", uint32_t(c.get_int("n_group", 1)));
            w.add_u32(p + "expert_group_used_count", uint32_t(c.get_int("topk_group", 1)));
        }
    }
    if (a.gguf == "gpt-oss") {
        w.add_u32(p + "attention.sliding_window", uint32_t(c.get_int("sliding_window", 128)));
    }
    (void)ws;
}

}  // namespace

GgmlType parse_export_type(const std::string& name) {
    static const std::map<std::string, GgmlType> kTypes = {
        {"f32", GgmlType::F32},     {"f16", GgmlType::F16},       {"bf16", GgmlType::BF16},
        {"q8_0", GgmlType::Q8_0},   {"q4_0", GgmlType::Q4_0},     {"q4_1", GgmlType::Q4_1},
        {"q5_0", GgmlType::Q5_0},   {"q5_1", GgmlType::Q5_1},     {"q2_k", GgmlType::Q2_K},
        {"q3_k", GgmlType::Q3_K},   {"q4_k", GgmlType::Q4_K},     {"q5_k", GgmlType::Q5_K},
        {"q6_k", GgmlType::Q6_K},   {"iq4_nl", GgmlType::IQ4_NL}, {"iq4_xs", GgmlType::IQ4_XS},
        {"mxfp4", GgmlType::MXFP4},
    };
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char ch) { return char(std::tolower(ch)); });
    const auto it = kTypes.find(lower);
    if (it != kTypes.end()) return it->second;
    std::string names;
    for (const auto& [n, t] : kTypes) names += (names.empty() ? "" : ", ") + n;
    throw Error("unknown GGUF type '" + name + "' (use one of " + names + ")");
}

GgufExportReport export_gguf(const std::string& hf_dir, const std::string& out_path,
                             const GgufExportOptions& options) {
    const HfConfig c = HfConfig::load_folder(hf_dir);
    const WeightStore ws = WeightStore::open_folder(hf_dir);
    const ArchInfo a = arch_of(c);
    GgufWriter w;
    GgufExportReport report;
    add_hparams(w, c, a, ws);
    w.add_u32("general.file_type", 0);
    report.tokenizer = add_tokenizer(w, hf_dir, c);
    {
        const std::string t = c.model_type();
        const bool norm = c.get_bool("norm_topk_prob", t == "qwen3_moe");
        if ((t == "qwen3_moe" && !norm) || ((t == "qwen2_moe" || t == "olmoe") && norm)) {
            report.llama_cpp_caveats.push_back(
                "llama.cpp's " + a.gguf + " fixes norm_topk_prob to " + (norm ? "false" : "true") +
                "; this checkpoint says " + (norm ? "true" : "false"));
        }
        if ((t == "qwen3_moe" || t == "qwen2_moe") && !c.get_int_list("mlp_only_layers").empty()) {
            report.llama_cpp_caveats.push_back("llama.cpp's " + a.gguf +
                                               " has no dense layers (mlp_only_layers)");
        }
        if (t == "olmoe" &&
            c.get_int("num_key_value_heads", 0) != c.get_int("num_attention_heads", 0)) {
            report.llama_cpp_caveats.push_back(
                "llama.cpp's olmoe expects as many KV heads as heads");
        }
    }

    const int64_t layers = c.require_int("num_hidden_layers");
    const int64_t heads = c.require_int("num_attention_heads");
    const int64_t kv_heads = c.get_int("num_key_value_heads", heads);
    const int64_t experts =
        c.get_int_any({"num_experts", "num_local_experts", "n_routed_experts"}, 0);
    // Tensors are collected per layer as fp32 and encoded at the end of each layer (whole
    // models in fp32 would need four bytes per weight: 120 GB for a 30B model).
    std::vector<Pending> out;
    size_t written = 0;
    auto flush = [&](size_t done, size_t total) {
        for (Pending& p : out) {
            GgmlType type = p.keep_f32 ? GgmlType::F32 : options.type;
            if (type != GgmlType::F32 && p.ne[0] % ggml_block_size(type) != 0) {
                type = fallback_type(type);
                if (p.ne[0] % ggml_block_size(type) != 0) type = GgmlType::F16;
                ++report.fallback_tensors;
            }
            std::vector<uint8_t> bytes = encode(p.values, p.ne[0], type);
            p.values = {};
            w.add_tensor(p.name, type, p.ne, std::move(bytes));
        }
        written += out.size();
        out.clear();
        if (options.progress) options.progress(done, total);
    };
    auto f32_of = [&](const std::string& name) { return values_of(ws, ws.get(name)); };
    auto add2d = [&](const std::string& gname, const TensorView& t, std::vector<float> v,
                     bool keep_f32 = false) {
        std::vector<int64_t> ne(t.shape.rbegin(), t.shape.rend());
        out.push_back({gname, ne, std::move(v), keep_f32 || t.shape.size() == 1});
    };

    // Global tensors.
    add2d("token_embd.weight", ws.get("model.embed_tokens.weight"),
          f32_of("model.embed_tokens.weight"));
    add2d("output_norm.weight", ws.get("model.norm.weight"), f32_of("model.norm.weight"));
    if (ws.has("lm_head.weight") && !c.get_bool("tie_word_embeddings", false)) {
        add2d("output.weight", ws.get("lm_head.weight"), f32_of("lm_head.weight"));
    }
    if (c.rope().type == "llama3") {
        // llama.cpp takes Llama-3 scaling as per-frequency divisors in rope_freqs.weight.
        const int64_t hd = c.get_int("head_dim", c.require_int("hidden_size") / heads);
        RopeConfig plain = c.rope();
        plain.type = "default";
        const auto base = RotaryEmbedding::create(plain, hd, 0, false);
        const auto scaled =
            RotaryEmbedding::create(c.rope(), hd, c.get_int("max_position_embeddings", 0), false);
        std::vector<float> factors(base.inv_freq.size());
        for (size_t i = 0; i < factors.size(); ++i)
            factors[i] = base.inv_freq[i] / scaled.inv_freq[i];
        out.push_back({"rope_freqs.weight", {int64_t(factors.size())}, std::move(factors), true});
    }
    flush(0, size_t(layers));
    const auto& names = to_gguf_names();
    for (int64_t l = 0; l < layers; ++l) {
        const std::string hp = "model.layers." + std::to_string(l) + ".",
                          gp = "blk." + std::to_string(l) + ".";
        // Plain per-layer tensors.
        for (const auto& [hf, gg] : names) {
            for (const char* kind : {".weight", ".bias", ""}) {
                const std::string name = hp + hf + kind;
                if (!ws.has(name) || (std::string(kind).empty() && hf != "self_attn.sinks"))
                    continue;
                const TensorView& t = ws.get(name);
                std::vector<float> v = values_of(ws, t);
                if (a.permute_qk && std::string(kind) == ".weight" &&
                    (hf == "self_attn.q_proj" || hf == "self_attn.k_proj")) {
                    v = permute_rows(v, t.shape[0], t.shape[1],
                                     hf == "self_attn.q_proj" ? heads : kv_heads);
                }
                std::string gname = gp + gg + (std::string(kind).empty() ? ".weight" : kind);
                const bool router = gg == "ffn_gate_inp" || gg == "ffn_gate_inp_shexp";
                if (gg == "ffn_gate_inp_shexp") {
                    out.push_back({gname, {t.shape.back()}, std::move(v), true});  // [hidden]
                    continue;
                }
                if (gg == "ffn_norm" && (a.gguf == "gpt-oss" || a.gguf == "glm4moe")) {
                    gname = gp + "post_attention_norm.weight";
                }
                add2d(gname, t, std::move(v), router);
            }
        }
        if (ws.has(hp + "mlp.gate.e_score_correction_bias")) {
            const TensorView& t = ws.get(hp + "mlp.gate.e_score_correction_bias");
            add2d(gp + "exp_probs_b.bias", t, tensor_to_f32(t), true);
        }
        // MLA: kv_b_proj [H*(nope+v), R] -> k_b [H, R, nope] (transposed per head), v_b [H, v, R].
        if (ws.has(hp + "self_attn.kv_b_proj.weight")) {
            const TensorView& t = ws.get(hp + "self_attn.kv_b_proj.weight");
            const auto v = values_of(ws, t);
            const int64_t nope = c.require_int("qk_nope_head_dim"),
                          vd = c.require_int("v_head_dim");
            const int64_t R = t.shape[1];
            std::vector<float> kb(size_t(heads * R * nope)), vb(size_t(heads * vd * R));
            for (int64_t h = 0; h < heads; ++h) {
                for (int64_t n = 0; n < nope; ++n) {
                    for (int64_t r = 0; r < R; ++r)
                        kb[size_t((h * R + r) * nope + n)] =
                            v[size_t((h * (nope + vd) + n) * R + r)];
                }
                std::copy_n(&v[size_t((h * (nope + vd) + nope) * R)], vd * R,
                            &vb[size_t(h * vd * R)]);
            }
            out.push_back({gp + "attn_k_b.weight", {nope, R, heads}, std::move(kb)});
            out.push_back({gp + "attn_v_b.weight", {R, vd, heads}, std::move(vb)});
        }
        // Routed experts as merged 3-D tensors.
        if (experts > 0) {
            const bool mixtral = ws.has(hp + "block_sparse_moe.experts.0.w1.weight");
            const std::string ep = hp + (mixtral ? "block_sparse_moe.experts." : "mlp.experts.");
            const std::array<std::pair<const char*, const char*>, 3> parts = {
                std::pair{"gate", mixtral ? "w1" : "gate_proj"},
                std::pair{"up", mixtral ? "w3" : "up_proj"},
                std::pair{"down", mixtral ? "w2" : "down_proj"}};
            if (ws.has(ep + "0." + parts[0].second + ".weight")) {
                for (const auto& [which, hfname] : parts) {
                    std::vector<float> all;
                    std::vector<int64_t> shape;
                    for (int64_t e = 0; e < experts; ++e) {
                        const TensorView& t =
                            ws.get(ep + std::to_string(e) + "." + hfname + ".weight");
                        shape = t.shape;
                        const auto v = values_of(ws, t);
                        all.insert(all.end(), v.begin(), v.end());
                    }
                    out.push_back({gp + "ffn_" + which + "_exps.weight",
                                   {shape[1], shape[0], experts},
                                   std::move(all)});
                }
            } else if (ws.has(ep + "gate_up_proj")) {
                // gpt-oss: gate_up [E, H, 2I] interleaved (input-major), down [E, I, H].
                const TensorView& gu = ws.get(ep + "gate_up_proj");
                const TensorView& dn = ws.get(ep + "down_proj");
                const int64_t H = gu.shape[1], I = gu.shape[2] / 2;
                const auto guv = tensor_to_f32(gu), dnv = tensor_to_f32(dn);
                const auto gub = f32_of(ep + "gate_up_proj_bias"),
                           dnb = f32_of(ep + "down_proj_bias");
                std::vector<float> g(size_t(experts * I * H)), u(g.size()), d(g.size()),
                    gb(size_t(experts * I)), ub(gb.size());
                for (int64_t e = 0; e < experts; ++e) {
                    for (int64_t h = 0; h < H; ++h) {
                        for (int64_t i = 0; i < I; ++i) {
                            g[size_t((e * I + i) * H + h)] =
                                guv[size_t((e * H + h) * 2 * I + 2 * i)];
                            u[size_t((e * I + i) * H + h)] =
                                guv[size_t((e * H + h) * 2 * I + 2 * i + 1)];
                            d[size_t((e * H + h) * I + i)] = dnv[size_t((e * I + i) * H + h)];
                        }
                    }
                    for (int64_t i = 0; i < I; ++i) {
                        gb[size_t(e * I + i)] = gub[size_t(e * 2 * I + 2 * i)];
                        ub[size_t(e * I + i)] = gub[size_t(e * 2 * I + 2 * i + 1)];
                    }
                }
                out.push_back({gp + "ffn_gate_exps.weight", {H, I, experts}, std::move(g)});
                out.push_back({gp + "ffn_up_exps.weight", {H, I, experts}, std::move(u)});
                out.push_back({gp + "ffn_down_exps.weight", {I, H, experts}, std::move(d)});
                out.push_back({gp + "ffn_gate_exps.bias", {I, experts}, std::move(gb), true});
                out.push_back({gp + "ffn_up_exps.bias", {I, experts}, std::move(ub), true});
                out.push_back(
                    {gp + "ffn_down_exps.bias", {H, experts}, std::vector<float>(dnb), true});
            }
        }
        flush(size_t(l + 1), size_t(layers));
    }
    report.tensors = written;
    w.write(out_path);
    return report;
}

}  // namespace moe
