// packed_dequant.h's packed_view (host code, CUDA builds only).
#if defined(MOE_HAVE_CUDA)

#include "cpu/moe/moe_kernels.h"
#include "cuda/packed_dequant.h"

namespace moe::cuda {

void for_each_packed_array(const PackedMatrix& m,
                           const std::function<void(const void*, size_t)>& fn) {
    fn(m.data.data(), m.data.size);
    fn(m.scale.data(), m.scale.size() * 4);
    fn(m.gscale.data(), m.gscale.size() * 4);
    fn(m.gmin.data(), m.gmin.size() * 4);
    fn(m.ksc.data(), m.ksc.size());
    fn(m.kmin.data(), m.kmin.size());
    fn(m.kd.data(), m.kd.size() * 4);
    fn(m.kdmin.data(), m.kdmin.size() * 4);
}

PackedView packed_view(const PackedMatrix& m,
                       const std::function<const uint8_t*(const void*, size_t)>& place) {
    const uint8_t* at[8] = {};  // in for_each_packed_array's order
    int i = 0;
    for_each_packed_array(m, [&](const void* p, size_t n) { at[i++] = n ? place(p, n) : nullptr; });
    PackedView v;
    v.kind = PackedKind(int(m.format));
    v.rows = m.rows;
    v.cols = m.cols;
    v.kp = m.kp;
    v.blocks = m.blocks;
    v.group = m.group;
    v.gate_up = m.gate_up;
    v.block_bytes = m.block_bytes;
    v.data = at[0];
    v.scale = reinterpret_cast<const float*>(at[1]);
    v.gscale = reinterpret_cast<const float*>(at[2]);
    v.gmin = reinterpret_cast<const float*>(at[3]);
    v.ksc = at[4];
    v.kmin = at[5];
    v.kd = reinterpret_cast<const float*>(at[6]);
    v.kdmin = reinterpret_cast<const float*>(at[7]);
    return v;
}

}  // namespace moe::cuda

#endif  // MOE_HAVE_CUDA
