// hybrid_model.h: what every build has; and, in builds without the CUDA path, the refusal.
#include "hybrid/hybrid_model.h"

#include "core/error.h"

namespace moe {

ExpertStreaming parse_expert_streaming(const std::string& s) {
    if (s == "auto") return ExpertStreaming::Auto;
    if (s == "never") return ExpertStreaming::Never;
    if (s == "always") return ExpertStreaming::Always;
    throw Error("--stream-experts: expected auto, never or always, got '" + s + "'");
}

#if !defined(MOE_HAVE_CUDA)
std::unique_ptr<PlacedModel> make_hybrid_model(std::unique_ptr<Model>, const Placement& placement,
                                               const HybridOptions&) {
    throw Error("the placement puts weights on the GPU (" + placement.summary() +
                "), but this build has no CUDA path; use --gpu-budget 0 or a CUDA build");
}
#endif

}  // namespace moe
