// Writes the seed inputs of the fuzz targets that no test file provides: a GGUF with every
// metadata type (arrays included) and tensors of several ggml types, and small safetensors
// files. scripts/fuzz.sh runs it into each target's corpus folder.
//   make_seeds OUT_DIR
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"

namespace {

void write_gguf(const std::string& path, moe::GgmlType type) {
    moe::GgufWriter w;
    w.add_string("general.architecture", "qwen3moe");
    w.add_string("general.name", "fuzz seed");
    w.add_u32("qwen3moe.block_count", 1);
    w.add_i32("qwen3moe.context_length", 256);
    w.add_u64("qwen3moe.embedding_length", 32);
    w.add_f32("qwen3moe.rope.freq_base", 10000.0f);
    w.add_bool("tokenizer.ggml.add_bos_token", true);
    w.add("seed.u8", moe::GgufValue::u8(7));
    w.add("seed.i8", moe::GgufValue::i8(-7));
    w.add("seed.u16", moe::GgufValue::u16(700));
    w.add("seed.i16", moe::GgufValue::i16(-700));
    w.add("seed.i64", moe::GgufValue::i64(-70000000000));
    w.add("seed.f64", moe::GgufValue::f64(0.25));
    w.add("tokenizer.ggml.tokens", moe::GgufValue::array({"<s>", "</s>", "a", "b", "ab"}));
    w.add("tokenizer.ggml.scores",
          moe::GgufValue::array(moe::GgufType::FLOAT32, std::vector<double>{0, 0, -1, -2, -3}));
    w.add("tokenizer.ggml.token_type",
          moe::GgufValue::array(moe::GgufType::INT32, std::vector<int64_t>{3, 3, 1, 1, 1}));
    w.add("seed.bools", moe::GgufValue::array_bool({true, false}));
    const int64_t cols = 256;  // one k-quant super-block
    w.add_tensor("token_embd.weight", type, {cols, 2},
                 std::vector<uint8_t>(moe::ggml_row_size(type, cols) * 2, 0x11));
    w.add_tensor("output_norm.weight", moe::GgmlType::F32, {cols},
                 std::vector<uint8_t>(cols * 4, 0));
    w.write(path);
}

void write_st(const std::string& path) {
    const std::vector<float> a(8 * 4, 0.5f);
    const std::vector<uint16_t> b(4 * 8, 0x3f80);
    moe::write_safetensors(path,
                           {{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
                             moe::DType::F32,
                             {8, 4},
                             a.data()},
                            {"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
                             moe::DType::BF16,
                             {4, 8},
                             b.data()}},
                           {{"format", "pt"}});
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_seeds OUT_DIR\n");
        return 2;
    }
    const std::filesystem::path out = argv[1];
    try {
        std::filesystem::create_directories(out / "gguf");
        std::filesystem::create_directories(out / "safetensors");
        write_gguf((out / "gguf" / "f16.gguf").string(), moe::GgmlType::F16);
        write_gguf((out / "gguf" / "q8_0.gguf").string(), moe::GgmlType::Q8_0);
        write_gguf((out / "gguf" / "q4_k.gguf").string(), moe::GgmlType::Q4_K);
        write_st((out / "safetensors" / "lora.safetensors").string());
    } catch (const moe::Error& e) {
        std::fprintf(stderr, "make_seeds: %s\n", e.what());
        return 1;
    }
    return 0;
}
