// The built-in demo model: a tiny Qwen3-MoE-shaped network with seeded random weights and a
// byte-level vocabulary, so that a fresh install can run end to end with no download. It is
// labelled as such everywhere; its text is noise.
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

constexpr int kHidden = 128, kLayers = 4, kHeads = 4, kKvHeads = 2, kHeadDim = 32;
constexpr int kExperts = 16, kTopK = 4, kMoeInter = 64, kDenseInter = 256;
constexpr int kSpecials = 3, kVocab = kSpecials + 256;  // <unk> <s> </s>, then <0x00>..<0xFF>

struct TensorBuilder {
    std::mt19937_64 rng{20261128};
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
    const Args args(argv, {}, {"out"});
    if (!args.has("out")) throw moe::Error("usage: moestudio-cli make-demo --out DIR");
    const std::filesystem::path dir(*args.get("out"));
    std::filesystem::create_directories(dir);

    TensorBuilder b;
    b.add("model.embed_tokens.weight", {kVocab, kHidden}, 0.5f);
    for (int l = 0; l < kLayers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        b.add(p + "input_layernorm.weight", {kHidden}, 0.0f, 1.0f);
        b.add(p + "post_attention_layernorm.weight", {kHidden}, 0.0f, 1.0f);
        b.add(p + "self_attn.q_proj.weight", {kHeads * kHeadDim, kHidden}, 0.08f);
        b.add(p + "self_attn.k_proj.weight", {kKvHeads * kHeadDim, kHidden}, 0.08f);
        b.add(p + "self_attn.v_proj.weight", {kKvHeads * kHeadDim, kHidden}, 0.08f);
        b.add(p + "self_attn.o_proj.weight", {kHidden, kHeads * kHeadDim}, 0.08f);
        b.add(p + "self_attn.q_norm.weight", {kHeadDim}, 0.0f, 1.0f);
        b.add(p + "self_attn.k_norm.weight", {kHeadDim}, 0.0f, 1.0f);
        if (l == 0) {
            b.add(p + "mlp.gate_proj.weight", {kDenseInter, kHidden}, 0.08f);
            b.add(p + "mlp.up_proj.weight", {kDenseInter, kHidden}, 0.08f);
            b.add(p + "mlp.down_proj.weight", {kHidden, kDenseInter}, 0.08f);
            continue;
        }
        b.add(p + "mlp.gate.weight", {kExperts, kHidden}, 0.08f);
        for (int e = 0; e < kExperts; ++e) {
            const std::string ep = p + "mlp.experts." + std::to_string(e) + ".";
            b.add(ep + "gate_proj.weight", {kMoeInter, kHidden}, 0.08f);
            b.add(ep + "up_proj.weight", {kMoeInter, kHidden}, 0.08f);
            b.add(ep + "down_proj.weight", {kHidden, kMoeInter}, 0.08f);
        }
    }
    b.add("model.norm.weight", {kHidden}, 0.0f, 1.0f);
    b.add("lm_head.weight", {kVocab, kHidden}, 0.3f);
    // Keep the noise readable: only printable ASCII bytes (and newline) can win.
    auto& head = b.data.back();
    for (int id = 0; id < kVocab; ++id) {
        const int byte = id - kSpecials;
        const bool printable = byte == '\n' || (byte >= 32 && byte < 127);
        if (printable) continue;
        for (int d = 0; d < kHidden; ++d) head[size_t(id * kHidden + d)] = moe::f32_to_bf16(0.0f);
    }

    std::vector<moe::TensorToWrite> tensors;
    for (size_t i = 0; i < b.names.size(); ++i) {
        tensors.push_back({b.names[i], moe::DType::BF16, b.shapes[i], b.data[i].data()});
    }
    moe::write_safetensors(
        (dir / "model.safetensors").string(), tensors,
        {{"format", "pt"}, {"moestudio", "built-in demo model, random weights"}});

    write_json(dir / "config.json", {{"architectures", {"Qwen3MoeForCausalLM"}},
                                     {"model_type", "qwen3_moe"},
                                     {"hidden_size", kHidden},
                                     {"intermediate_size", kDenseInter},
                                     {"moe_intermediate_size", kMoeInter},
                                     {"num_hidden_layers", kLayers},
                                     {"num_attention_heads", kHeads},
                                     {"num_key_value_heads", kKvHeads},
                                     {"head_dim", kHeadDim},
                                     {"num_experts", kExperts},
                                     {"num_experts_per_tok", kTopK},
                                     {"norm_topk_prob", true},
                                     {"mlp_only_layers", {0}},
                                     {"decoder_sparse_step", 1},
                                     {"vocab_size", kVocab},
                                     {"max_position_embeddings", 4096},
                                     {"rms_norm_eps", 1e-6},
                                     {"rope_theta", 10000.0},
                                     {"tie_word_embeddings", false},
                                     {"bos_token_id", 1},
                                     {"eos_token_id", 2},
                                     {"torch_dtype", "bfloat16"},
                                     {"moestudio_demo",
                                      "Built-in demo model made by MoE Studio: random weights, "
                                      "output is noise. Load a real model for real answers."}});
    write_json(dir / "generation_config.json", {{"bos_token_id", 1},
                                                {"eos_token_id", 2},
                                                {"do_sample", true},
                                                {"temperature", 0.8},
                                                {"top_p", 0.95}});
    nlohmann::json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
    for (int byte = 0; byte < 256; ++byte) {
        char piece[8];
        std::snprintf(piece, sizeof piece, "<0x%02X>", byte);
        vocab[piece] = kSpecials + byte;
    }
    write_json(dir / "tokenizer.json", {{"version", "1.0"},
                                        {"added_tokens",
                                         {{{"id", 0}, {"content", "<unk>"}, {"special", true}},
                                          {{"id", 1}, {"content", "<s>"}, {"special", true}},
                                          {{"id", 2}, {"content", "</s>"}, {"special", true}}}},
                                        {"normalizer", nullptr},
                                        {"pre_tokenizer", nullptr},
                                        {"decoder", {{"type", "ByteFallback"}}},
                                        {"model",
                                         {{"type", "BPE"},
                                          {"byte_fallback", true},
                                          {"unk_token", "<unk>"},
                                          {"vocab", vocab},
                                          {"merges", nlohmann::json::array()}}}});
    std::ofstream(dir / "README.md")
        << "# MoE Studio built-in demo model\n\nA tiny Qwen3-MoE-shaped model (" << kLayers
        << " layers, " << kExperts << " experts, top-" << kTopK
        << ") with seeded random weights and a byte vocabulary, made by `moestudio-cli "
           "make-demo`. It exists so that a fresh install runs end to end; its output is "
           "noise.\n";
    std::printf("demo model written to %s\n", dir.string().c_str());
    return 0;
}

}  // namespace moecli
