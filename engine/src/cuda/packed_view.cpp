// packed_dequant.h's packed_view (host code, CUDA builds only).
#if defined(MOE_HAVE_CUDA)

#include "cpu/moe/moe_kernels.h"
#include "cuda/packed_dequant.h"

namespace moe::cuda {

PackedView packed_view(const PackedMatrix& m,
                       const std::function<const uint8_t*(const void*, size_t)>& place) {
    const auto put = [&](const void* p, size_t n) -> const uint8_t* {
        return n ? place(p, n) : nullptr;
    };
    PackedView v;
    v.kind = PackedKind(int(m.format));
    v.rows = m.rows;
    v.cols = m.cols;
    v.kp = m.kp;
    v.blocks = m.blocks;
    v.group = m.group;
    v.gate_up = m.gate_up;
    v.block_bytes = m.block_bytes;
    v.data = put(m.data.data(), m.data.size);
    v.scale = reinterpret_cast<const float*>(put(m.scale.data(), m.scale.size() * 4));
    v.gscale = reinterpret_cast<const float*>(put(m.gscale.data(), m.gscale.size() * 4));
    v.gmin = reinterpret_cast<const float*>(put(m.gmin.data(), m.gmin.size() * 4));
    v.ksc = put(m.ksc.data(), m.ksc.size());
    v.kmin = put(m.kmin.data(), m.kmin.size());
    v.kd = reinterpret_cast<const float*>(put(m.kd.data(), m.kd.size() * 4));
    v.kdmin = reinterpret_cast<const float*>(put(m.kdmin.data(), m.kdmin.size() * 4));
    return v;
}

}  // namespace moe::cuda

#endif  // MOE_HAVE_CUDA
