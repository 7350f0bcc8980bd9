#pragma once
// Hugging Face folder -> GGUF file that llama.cpp loads: llama.cpp's architecture names and
// metadata keys, its tensor names and layouts (merged 3-D experts, Llama's permuted q/k rows,
// DeepSeek's k_b/v_b split, gpt-oss's split gate/up experts), the tokenizer as
// tokenizer.ggml.* and the chat template, weights converted to the requested type.
#include <functional>
#include <string>
#include <vector>

#include "formats/ggml_types.h"

namespace moe {

struct GgufExportOptions {
    GgmlType type = GgmlType::BF16;  // for 2-D weights; norms, biases and routers stay F32
    // Called with (layers done, layers) as the conversion goes (0 after the embeddings).
    std::function<void(size_t, size_t)> progress;
};

struct GgufExportReport {
    size_t tensors = 0;
    size_t fallback_tensors = 0;  // rows not a multiple of the K-quant block: written as Q8_0
    std::string tokenizer;        // "gpt2 (qwen2)", "llama", or "none"
    // Settings of this checkpoint that llama.cpp's code for the architecture does not read
    // (MoE Studio follows the file; llama.cpp will compute differently).
    std::vector<std::string> llama_cpp_caveats;
};

// Throws moe::Error naming the file, tensor or setting that cannot be converted.
GgufExportReport export_gguf(const std::string& hf_dir, const std::string& out_path,
                             const GgufExportOptions& options);

// "bf16", "q4_k", ... -> type (moe::Error listing the accepted names otherwise).
GgmlType parse_export_type(const std::string& name);

}  // namespace moe
