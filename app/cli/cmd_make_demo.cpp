// The built-in demo model: a tiny Qwen3-MoE-shaped network with seeded random weights and a
// byte-level vocabulary, so that a fresh install can run end to end with no download. It is
// labelled as such everywhere; its text is noise.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "args.h"
#include "commands.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/parallel.h"
#include "formats/safetensors.h"
#include "tokenizer/byte_level_files.h"

namespace moecli {

namespace {

// Byte-level vocabulary as GPT-2/Qwen use it: ids 0..255 are the bytes (in byte-level
// unicode spelling), then the special tokens.
constexpr int kBytes = 256;
const char* const kSpecialTokens[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
constexpr int kVocab = kBytes + 3;

struct DemoShape {
    std::string arch = "qwen3_moe";  // or "deepseek_v2" (MLA, shared experts, dense first layers)
    int hidden = 128, layers = 4, heads = 4, kv_heads = 2, experts = 16, top_k = 4;
    int moe_inter = 64, dense_inter = 256;
    int head_dim_override = 0;  // 0 = hidden / heads
    // deepseek_v2 only
    int kv_lora = 32, qk_nope = 16, qk_rope = 8, v_head = 16, shared_experts = 2, dense_layers = 1;
    uint64_t seed = 20261128;
    int head_dim() const { return head_dim_override ? head_dim_override : hidden / heads; }
};

// Published shapes (random weights, byte-level vocabulary): the models the benchmarks stand
// in for. --layers and the other options still override.
DemoShape preset(const std::string& name) {
    DemoShape d;
    if (name == "qwen3-30b-a3b") {
        d.hidden = 2048, d.layers = 48, d.heads = 32, d.kv_heads = 4, d.head_dim_override = 128;
        d.experts = 128, d.top_k = 8, d.moe_inter = 768, d.dense_inter = 6144;
    } else if (name == "deepseek-v2-lite") {
        d.arch = "deepseek_v2";
        d.hidden = 2048, d.layers = 27, d.heads = 16, d.kv_heads = 16;
        d.kv_lora = 512, d.qk_nope = 128, d.qk_rope = 64, d.v_head = 128;
        d.experts = 64, d.top_k = 6, d.moe_inter = 1408, d.shared_experts = 2;
        d.dense_layers = 1, d.dense_inter = 10944;
    } else if (name != "demo") {
        throw moe::Error("make-demo: unknown --shape '" + name +
                         "' (demo, qwen3-30b-a3b, deepseek-v2-lite)");
    }
    return d;
}

// The tensors, declared first and generated while the file is written: each from its own
// seeded generator (seed, tensor index), in parallel batches, so that Qwen3-30B-A3B-sized
// benchmark models (60 GB of bf16) are made in a minute without holding them in memory.
struct TensorSpec {
    std::string name;
    std::vector<int64_t> shape;
    float stddev = 0.0f, mean = 0.0f;
    bool printable_rows_only = false;  // lm_head: rows of unprintable bytes zeroed
    int64_t numel() const {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        return n;
    }
};

struct TensorPlan {
    std::vector<TensorSpec> specs;
    void add(const std::string& name, std::vector<int64_t> shape, float stddev, float mean = 0.0f) {
        specs.push_back({name, std::move(shape), stddev, mean, false});
    }
};

uint64_t mix_seed(uint64_t seed, uint64_t index) {  // splitmix64 of the pair
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void generate(const TensorSpec& t, uint64_t seed, int64_t hidden, std::vector<uint16_t>& out) {
    out.resize(size_t(t.numel()));
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> dist(t.mean, t.stddev);
    for (auto& x : out) x = moe::f32_to_bf16(t.stddev > 0 ? dist(rng) : t.mean);
    if (!t.printable_rows_only) return;
    // Keep the noise readable: only printable ASCII bytes (and newline) can win.
    for (int64_t id = 0; id < t.shape[0]; ++id) {
        const bool printable = id == '\n' || (id >= 32 && id < 127);
        if (printable) continue;
        for (int64_t c = 0; c < hidden; ++c) out[size_t(id * hidden + c)] = moe::f32_to_bf16(0.0f);
    }
}

void write_tensors(const std::filesystem::path& file, const TensorPlan& plan, uint64_t seed,
                   int64_t hidden) {
    std::vector<moe::TensorToWrite> decl;
    for (const TensorSpec& t : plan.specs)
        decl.push_back({t.name, moe::DType::BF16, t.shape, nullptr});
    moe::SafetensorsStreamWriter w(
        file.string(), decl,
        {{"format", "pt"}, {"moestudio", "built-in demo model, random weights"}});
    constexpr size_t kBatch = 64;
    std::vector<std::vector<uint16_t>> buf(kBatch);
    for (size_t i0 = 0; i0 < plan.specs.size(); i0 += kBatch) {
        const size_t n = std::min(kBatch, plan.specs.size() - i0);
        moe::parallel_for(int64_t(n), 1, [&](int64_t a, int64_t b) {
            for (int64_t j = a; j < b; ++j)
                generate(plan.specs[i0 + size_t(j)], mix_seed(seed, i0 + size_t(j)), hidden,
                         buf[size_t(j)]);
        });
        for (size_t j = 0; j < n; ++j) w.write_next(buf[j].data());
    }
    w.finish();
}

void write_json(const std::filesystem::path& p, const nlohmann::json& j) {
    std::ofstream out(p);
    out << j.dump(2) << "\n";
    if (!out) throw moe::Error(p.string() + ": cannot write");
}

// qwen3_moe: every layer MoE, GQA with per-head q/k norms.
TensorPlan qwen3_tensors(const DemoShape& d) {
    TensorPlan b;
    const int H = d.hidden, hd = d.head_dim();
    b.add("model.embed_tokens.weight", {kVocab, H}, 0.5f);
    for (int l = 0; l < d.layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        b.add(p + "input_layernorm.weight", {H}, 0.0f, 1.0f);
        b.add(p + "post_attention_layernorm.weight", {H}, 0.0f, 1.0f);
        b.add(p + "self_attn.q_proj.weight", {d.heads * hd, H}, 0.08f);
        b.add(p + "self_attn.k_proj.weight", {d.kv_heads * hd, H}, 0.08f);
        b.add(p + "self_attn.v_proj.weight", {d.kv_heads * hd, H}, 0.08f);
        b.add(p + "self_attn.o_proj.weight", {H, d.heads * hd}, 0.08f);
        b.add(p + "self_attn.q_norm.weight", {hd}, 0.0f, 1.0f);
        b.add(p + "self_attn.k_norm.weight", {hd}, 0.0f, 1.0f);
        b.add(p + "mlp.gate.weight", {d.experts, H}, 0.08f);
        for (int e = 0; e < d.experts; ++e) {
            const std::string ep = p + "mlp.experts." + std::to_string(e) + ".";
            b.add(ep + "gate_proj.weight", {d.moe_inter, H}, 0.08f);
            b.add(ep + "up_proj.weight", {d.moe_inter, H}, 0.08f);
            b.add(ep + "down_proj.weight", {H, d.moe_inter}, 0.08f);
        }
    }
    b.add("model.norm.weight", {H}, 0.0f, 1.0f);
    b.add("lm_head.weight", {kVocab, H}, 0.3f);
    b.specs.back().printable_rows_only = true;
    return b;
}

// deepseek_v2: multi-head latent attention (plain q_proj), the first dense_layers layers dense,
// then routed experts plus shared_experts shared ones.
TensorPlan deepseek_v2_tensors(const DemoShape& d) {
    TensorPlan b;
    const int H = d.hidden, qk = d.qk_nope + d.qk_rope;
    b.add("model.embed_tokens.weight", {kVocab, H}, 0.5f);
    const auto mlp = [&](const std::string& p, int inter) {
        b.add(p + "gate_proj.weight", {inter, H}, 0.08f);
        b.add(p + "up_proj.weight", {inter, H}, 0.08f);
        b.add(p + "down_proj.weight", {H, inter}, 0.08f);
    };
    for (int l = 0; l < d.layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        b.add(p + "input_layernorm.weight", {H}, 0.0f, 1.0f);
        b.add(p + "post_attention_layernorm.weight", {H}, 0.0f, 1.0f);
        b.add(p + "self_attn.q_proj.weight", {d.heads * qk, H}, 0.08f);
        b.add(p + "self_attn.kv_a_proj_with_mqa.weight", {d.kv_lora + d.qk_rope, H}, 0.08f);
        b.add(p + "self_attn.kv_a_layernorm.weight", {d.kv_lora}, 0.0f, 1.0f);
        b.add(p + "self_attn.kv_b_proj.weight", {d.heads * (d.qk_nope + d.v_head), d.kv_lora},
              0.08f);
        b.add(p + "self_attn.o_proj.weight", {H, d.heads * d.v_head}, 0.08f);
        if (l < d.dense_layers) {
            mlp(p + "mlp.", d.dense_inter);
            continue;
        }
        b.add(p + "mlp.gate.weight", {d.experts, H}, 0.08f);
        for (int e = 0; e < d.experts; ++e)
            mlp(p + "mlp.experts." + std::to_string(e) + ".", d.moe_inter);
        mlp(p + "mlp.shared_experts.", d.shared_experts * d.moe_inter);
    }
    b.add("model.norm.weight", {H}, 0.0f, 1.0f);
    b.add("lm_head.weight", {kVocab, H}, 0.3f);
    b.specs.back().printable_rows_only = true;
    return b;
}

nlohmann::json model_config(const DemoShape& d) {
    const int eos = kBytes;  // <|endoftext|>
    nlohmann::json c = {{"hidden_size", d.hidden},
                        {"intermediate_size", d.dense_inter},
                        {"moe_intermediate_size", d.moe_inter},
                        {"num_hidden_layers", d.layers},
                        {"num_attention_heads", d.heads},
                        {"num_key_value_heads", d.kv_heads},
                        {"num_experts_per_tok", d.top_k},
                        {"norm_topk_prob", d.arch == "qwen3_moe"},
                        {"hidden_act", "silu"},
                        {"rms_norm_eps", 1e-6},
                        {"rope_theta", 10000.0},
                        {"max_position_embeddings", 4096},
                        {"tie_word_embeddings", false},
                        {"vocab_size", kVocab},
                        {"eos_token_id", eos},
                        {"torch_dtype", "bfloat16"},
                        {"moestudio_demo",
                         "Built-in demo model made by MoE Studio: random weights, output is "
                         "noise. Load a real model for real answers."}};
    if (d.arch == "deepseek_v2") {
        c["architectures"] = {"DeepseekV2ForCausalLM"};
        c["model_type"] = "deepseek_v2";
        c["q_lora_rank"] = nullptr;
        c["kv_lora_rank"] = d.kv_lora;
        c["qk_nope_head_dim"] = d.qk_nope;
        c["qk_rope_head_dim"] = d.qk_rope;
        c["qk_head_dim"] = d.qk_nope + d.qk_rope;
        c["head_dim"] = d.qk_rope;
        c["v_head_dim"] = d.v_head;
        c["n_routed_experts"] = d.experts;
        c["n_shared_experts"] = d.shared_experts;
        c["first_k_dense_replace"] = d.dense_layers;
        c["moe_layer_freq"] = 1;
        c["topk_method"] = "greedy";
        c["n_group"] = 1;
        c["topk_group"] = 1;
        c["routed_scaling_factor"] = 1.0;
        c["scoring_func"] = "softmax";
    } else {
        c["architectures"] = {"Qwen3MoeForCausalLM"};
        c["model_type"] = "qwen3_moe";
        c["head_dim"] = d.head_dim();
        c["num_experts"] = d.experts;
        c["decoder_sparse_step"] = 1;
        c["mlp_only_layers"] = nlohmann::json::array();
    }
    return c;
}

}  // namespace

int cmd_make_demo(const std::vector<std::string>& argv) {
    const Args args(argv, {},
                    {"out", "shape", "hidden", "layers", "experts", "moe-inter", "seed", "heads",
                     "kv-heads", "head-dim", "top-k"});
    if (!args.has("out")) {
        throw moe::Error(
            "usage: moestudio-cli make-demo --out DIR [--shape demo|qwen3-30b-a3b|"
            "deepseek-v2-lite] [--hidden N --layers N --experts N --moe-inter N --top-k N "
            "--heads N --kv-heads N --head-dim N --seed S]");
    }
    const std::string shape = args.get_or("shape", "demo");
    DemoShape d = preset(shape);
    d.hidden = int(args.get_int("hidden", d.hidden));
    d.layers = int(args.get_int("layers", d.layers));
    d.experts = int(args.get_int("experts", d.experts));
    d.moe_inter = int(args.get_int("moe-inter", d.moe_inter));
    d.heads = int(args.get_int("heads", d.heads));
    d.kv_heads = int(args.get_int("kv-heads", std::min(d.kv_heads, d.heads)));
    d.head_dim_override = int(args.get_int("head-dim", d.head_dim_override));
    d.top_k = int(args.get_int("top-k", d.top_k));
    if (shape == "demo") d.dense_inter = 2 * d.hidden;
    d.seed = uint64_t(args.get_int("seed", int64_t(d.seed)));
    if ((!d.head_dim_override && d.hidden % d.heads != 0) || d.head_dim() % 2 != 0 ||
        d.layers < 1 || d.experts < d.top_k || d.heads % d.kv_heads != 0) {
        throw moe::Error(
            "make-demo: inconsistent shape (heads must divide hidden unless --head-dim is "
            "given, head dim even, kv-heads dividing heads, experts >= top-k)");
    }
    const std::filesystem::path dir(*args.get("out"));
    std::filesystem::create_directories(dir);
    const TensorPlan b = d.arch == "deepseek_v2" ? deepseek_v2_tensors(d) : qwen3_tensors(d);
    write_tensors(dir / "model.safetensors", b, d.seed, d.hidden);
    write_json(dir / "config.json", model_config(d));
    const int eos = kBytes;  // <|endoftext|>
    write_json(dir / "generation_config.json",
               {{"eos_token_id", eos}, {"do_sample", true}, {"temperature", 0.8}, {"top_p", 0.95}});
    moe::write_byte_level_tokenizer(
        dir.string(),
        {{kSpecialTokens[0], kSpecialTokens[1], kSpecialTokens[2]}, 0, kSpecialTokens[0]});
    std::ofstream(dir / "README.md")
        << "# MoE Studio built-in demo model\n\nA " << d.arch << "-shaped model (" << d.layers
        << " layers, hidden " << d.hidden << ", " << d.experts << " experts, top-" << d.top_k
        << ") with seeded random weights and a byte-level vocabulary, made by `moestudio-cli "
           "make-demo`. It exists so that a fresh install runs end to end; its output is "
           "noise.\n";
    std::printf("demo model written to %s\n", dir.string().c_str());
    return 0;
}

}  // namespace moecli
