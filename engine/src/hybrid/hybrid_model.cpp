// hybrid_model.h in builds without the CUDA path: saying so is all it can do.
#if !defined(MOE_HAVE_CUDA)

#include "hybrid/hybrid_model.h"

#include "core/error.h"

namespace moe {

std::unique_ptr<PlacedModel> make_hybrid_model(std::unique_ptr<Model>, const Placement& placement,
                                               const HybridOptions&) {
    throw Error("the placement puts weights on the GPU (" + placement.summary() +
                "), but this build has no CUDA path; use --gpu-budget 0 or a CUDA build");
}

}  // namespace moe

#endif  // !MOE_HAVE_CUDA
