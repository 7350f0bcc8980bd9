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
#include "formats/safetensors.h"

namespace moecli {

namespace {

// Byte-level vocabulary as GPT-2/Qwen use it: ids 0..255 are the bytes (in byte-level
// unicode spelling), then the special tokens.
constexpr int kBytes = 256;
const char* const kSpecialTokens[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
constexpr int kVocab = kBytes + 3;

struct DemoShape {
    int hidden = 128, layers = 4, heads = 4, kv_heads = 2, experts = 16, top_k = 4;
    int moe_inter = 64, dense_inter = 256;
    int head_dim_override = 0;  // 0 = hidden / heads
    uint64_t seed = 20261128;
    int head_dim() const { return head_dim_override ? head_dim_override : hidden / heads; }
};

// GPT-2's byte -> printable unicode character map (so every byte has a visible token).
std::string byte_level_char(int b) {
    int cp = b;
    const bool printable =
        (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (!printable) {
        int n = 0;
        for (int x = 0; x < b; ++x) {
            const bool p =
                (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF);
            if (!p) ++n;
        }
        cp = 256 + n;
    }
    std::string out;
    if (cp < 0x80) {
        out += char(cp);
    } else {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    }
    return out;
}

struct TensorBuilder {
    std::mt19937_64 rng;
    std::vector<std::string> names;
    std::vector<std::vector<int64_t>> shapes;
    std::vector<std::vector<uint16_t>> data;

    void add(const std::string& name, std::vector<int64_t> shape, float stddev, float mean = 0.0f) {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        std::normal_distribution<float> dist(mean, stddev);
        std::vector<uint16_t> v(static_cast<size_t>(n));
        for (auto& x : v) x = moe::f32_to_bf16(stddev > 0 ? dist(rng) : mean);
        names.push_back(name);
        shapes.push_back(std::move(shape));
        data.push_back(std::move(v));
    }
};

void write_json(const std::filesystem::path& p, const nlohmann::json& j) {
    std::ofstream out(p);
    out << j.dump(2) << "\n";
    if (!out) throw moe::Error(p.string() + ": cannot write");
}

}  // namespace

int cmd_make_demo(const std::vector<std::string>& argv) {
    const Args args(argv, {},
                    {"out", "hidden", "layers", "experts", "moe-inter", "seed", "heads", "kv-heads",
                     "head-dim", "top-k"});
    if (!args.has("out")) {
        throw moe::Error(
            "usage: moestudio-cli make-demo --out DIR [--hidden N --layers N --experts N "
            "--moe-inter N --top-k N --heads N --kv-heads N --head-dim N --seed S]");
    }
    DemoShape d;
    d.hidden = int(args.get_int("hidden", d.hidden));
    d.layers = int(args.get_int("layers", d.layers));
    d.experts = int(args.get_int("experts", d.experts));
    d.moe_inter = int(args.get_int("moe-inter", d.moe_inter));
    d.heads = int(args.get_int("heads", d.heads));
    d.kv_heads = int(args.get_int("kv-heads", std::min(d.kv_heads, d.heads)));
    d.head_dim_override = int(args.get_int("head-dim", 0));
    d.top_k = int(args.get_int("top-k", d.top_k));
    d.dense_inter = 2 * d.hidden;
    d.seed = uint64_t(args.get_int("seed", int64_t(d.seed)));
    if ((!d.head_dim_override && d.hidden % d.heads != 0) || d.head_dim() % 2 != 0 ||
        d.layers < 1 || d.experts < d.top_k || d.heads % d.kv_heads != 0) {
        throw moe::Error(
            "make-demo: inconsistent shape (heads must divide hidden unless --head-dim is "
            "given, head dim even, kv-heads dividing heads, experts >= top-k)");
    }
    const std::filesystem::path dir(*args.get("out"));
    std::filesystem::create_directories(dir);

    TensorBuilder b;
    b.rng.seed(d.seed);
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
    // Keep the noise readable: only printable ASCII bytes (and newline) can win.
    auto& head = b.data.back();
    for (int id = 0; id < kVocab; ++id) {
        const bool printable = id == '\n' || (id >= 32 && id < 127);
        if (printable) continue;
        for (int c = 0; c < H; ++c) head[size_t(id * H + c)] = moe::f32_to_bf16(0.0f);
    }

    std::vector<moe::TensorToWrite> tensors;
    for (size_t i = 0; i < b.names.size(); ++i) {
        tensors.push_back({b.names[i], moe::DType::BF16, b.shapes[i], b.data[i].data()});
    }
    moe::write_safetensors(
        (dir / "model.safetensors").string(), tensors,
        {{"format", "pt"}, {"moestudio", "built-in demo model, random weights"}});

    const int eos = kBytes;  // <|endoftext|>
    write_json(dir / "config.json", {{"architectures", {"Qwen3MoeForCausalLM"}},
                                     {"model_type", "qwen3_moe"},
                                     {"hidden_size", H},
                                     {"intermediate_size", d.dense_inter},
                                     {"moe_intermediate_size", d.moe_inter},
                                     {"num_hidden_layers", d.layers},
                                     {"num_attention_heads", d.heads},
                                     {"num_key_value_heads", d.kv_heads},
                                     {"head_dim", hd},
                                     {"num_experts", d.experts},
                                     {"num_experts_per_tok", d.top_k},
                                     {"norm_topk_prob", true},
                                     {"mlp_only_layers", nlohmann::json::array()},
                                     {"decoder_sparse_step", 1},
                                     {"vocab_size", kVocab},
                                     {"max_position_embeddings", 4096},
                                     {"rms_norm_eps", 1e-6},
                                     {"rope_theta", 10000.0},
                                     {"tie_word_embeddings", false},
                                     {"eos_token_id", eos},
                                     {"torch_dtype", "bfloat16"},
                                     {"moestudio_demo",
                                      "Built-in demo model made by MoE Studio: random weights, "
                                      "output is noise. Load a real model for real answers."}});
    write_json(dir / "generation_config.json",
               {{"eos_token_id", eos}, {"do_sample", true}, {"temperature", 0.8}, {"top_p", 0.95}});
    nlohmann::json vocab = nlohmann::json::object();
    for (int byte = 0; byte < kBytes; ++byte) vocab[byte_level_char(byte)] = byte;
    nlohmann::json added = nlohmann::json::array();
    for (int i = 0; i < 3; ++i) {
        added.push_back({{"id", kBytes + i},
                         {"content", kSpecialTokens[i]},
                         {"special", true},
                         {"single_word", false},
                         {"lstrip", false},
                         {"rstrip", false},
                         {"normalized", false}});
    }
    const nlohmann::json byte_level = {{"type", "ByteLevel"},
                                       {"add_prefix_space", false},
                                       {"trim_offsets", true},
                                       {"use_regex", true}};
    write_json(dir / "tokenizer.json", {{"version", "1.0"},
                                        {"added_tokens", added},
                                        {"normalizer", nullptr},
                                        {"pre_tokenizer", byte_level},
                                        {"post_processor", nullptr},
                                        {"decoder", byte_level},
                                        {"model",
                                         {{"type", "BPE"},
                                          {"byte_fallback", false},
                                          {"vocab", vocab},
                                          {"merges", nlohmann::json::array()}}}});
    write_json(
        dir / "tokenizer_config.json",
        {{"eos_token", kSpecialTokens[0]},
         {"add_bos_token", false},
         {"chat_template",
          "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"}});
    std::ofstream(dir / "README.md")
        << "# MoE Studio built-in demo model\n\nA tiny Qwen3-MoE-shaped model (" << d.layers
        << " layers, hidden " << H << ", " << d.experts << " experts, top-" << d.top_k
        << ") with seeded random weights and a byte-level vocabulary, made by `moestudio-cli "
           "make-demo`. It exists so that a fresh install runs end to end; its output is "
           "noise.\n";
    std::printf("demo model written to %s\n", dir.string().c_str());
    return 0;
}

}  // namespace moecli
