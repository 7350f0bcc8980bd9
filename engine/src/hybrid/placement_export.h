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

}  // namespace moe
