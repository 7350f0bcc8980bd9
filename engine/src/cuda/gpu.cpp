#include "cuda/gpu.h"

#if defined(MOE_HAVE_CUDA)
#include <cuda_runtime_api.h>
#endif

namespace moe {

bool cuda_built() {
#if defined(MOE_HAVE_CUDA)
    return true;
#else
    return false;
#endif
}

std::vector<GpuInfo> list_gpus() {
    std::vector<GpuInfo> out;
#if defined(MOE_HAVE_CUDA)
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no device / no driver" error
        return out;
    }
    for (int i = 0; i < n; ++i) {
        cudaDeviceProp p{};
        if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
        GpuInfo g;
        g.index = i;
        g.name = p.name;
        g.compute_major = p.major;
        g.compute_minor = p.minor;
        g.multiprocessors = p.multiProcessorCount;
        g.total_bytes = p.totalGlobalMem;
        size_t free = 0, total = 0;
        if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&free, &total) == cudaSuccess)
            g.free_bytes = free;
        out.push_back(g);
    }
#endif
    return out;
}

std::string gpu_unavailable_reason() {
#if defined(MOE_HAVE_CUDA)
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return std::string("the CUDA runtime reports: ") + cudaGetErrorString(e);
    }
    return n == 0 ? "no CUDA device is present" : "";
#else
    return "this build has no CUDA support (configured with MOE_WITH_CUDA=OFF or no CUDA toolkit)";
#endif
}

}  // namespace moe
