#pragma once
// A placement as other engines' options (issue 8), so that a user can compare or move a split
// planned here:
//   llama.cpp: `-ngl 999` and `-ot REGEX=CPU` tensor overrides. llama.cpp keeps all routed
//     experts of a layer in one tensor per projection (blk.N.ffn_{gate,up,down}_exps), so the
//     split is approximated per layer: a layer's experts go to the CPU when fewer than half of
//     them are on the GPU here; attention, dense parts and the output head follow the
//     placement.
//   SGLang with KTransformers (sglang-kt): `--kt-num-gpu-experts N` (GPU experts per MoE layer,
//     the placement's mean) and `--kt-expert-placement-strategy frequency|uniform`, with the
//     placement's exact per-layer GPU experts in a JSON file beside it.
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "hybrid/placement.h"

namespace moe {

struct ExportedPlacement {
    std::string options;  // the command-line fragment
    std::string note;     // what the translation kept and what it approximated
    int64_t gpu_experts_kept = 0, gpu_experts = 0;
};

ExportedPlacement export_llama_cpp(const Placement& p);
// `frequency`: the placement was planned from expert telemetry (--usage).
ExportedPlacement export_sglang_kt(const Placement& p, bool frequency);
// The JSON file sglang-kt's options go with: the exact GPU experts of each layer,
// {"gpu_experts_per_layer": [[expert, ...] per layer]}.
nlohmann::json sglang_kt_experts(const Placement& p);

// What an SGLang + KTransformers launch needs beyond the placement.
struct SglangLaunch {
    std::string model_path;    // a Hugging Face folder (sglang-kt does not load GGUF files)
    std::string served_name;   // --served-model-name; empty: the folder's name
    std::string weight_dtype;  // the checkpoint's expert type: "BF16", "F8_E4M3", ...
    int cpu_threads = 0;       // --kt-cpuinfer; 0: left out (KTransformers' default)
    int port = 30000;
};
// The whole `python -m sglang.launch_server ...` command line (one option per line, shell
// continuation) that serves this placement's model with SGLang and KTransformers' CPU expert
// kernels: the model, KTransformers' weight path and method for the checkpoint's type
// (--kt-method BF16 or FP8), its CPU threads, export_sglang_kt's expert options, and loopback
// host and port, so that the same OpenAI clients reach it. Throws moe::Error for a GGUF file
// or a weight type KTransformers does not take natively.
std::string sglang_kt_launch_command(const Placement& p, bool frequency, const SglangLaunch& l);

}  // namespace moe
