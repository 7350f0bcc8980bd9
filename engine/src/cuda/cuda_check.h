#pragma once
// Every CUDA runtime call goes through MOE_CUDA(...): a failure becomes a moe::Error naming the
// call, the source position and the runtime's message, never a silently wrong result. Kernel
// launches are followed by MOE_CUDA_LAUNCH() (launch configuration errors surface at once;
// faults inside a kernel surface at the next synchronizing call).
#include <cuda_runtime_api.h>

#include <string>

#include "core/error.h"

namespace moe::cuda {

[[noreturn]] inline void fail(cudaError_t e, const char* call, const char* file, int line) {
    // The runtime also keeps a failed call's error as the thread's "last error"; it is reported
    // here, so clear it (else the next launch check would report it again).
    (void)cudaGetLastError();
    throw Error(std::string("CUDA error in ") + call + " (" + file + ":" + std::to_string(line) +
                "): " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

}  // namespace moe::cuda

#define MOE_CUDA(call)                                                   \
    do {                                                                 \
        const cudaError_t moe_cuda_err_ = (call);                        \
        if (moe_cuda_err_ != cudaSuccess)                                \
            ::moe::cuda::fail(moe_cuda_err_, #call, __FILE__, __LINE__); \
    } while (0)

#define MOE_CUDA_LAUNCH() MOE_CUDA(cudaGetLastError())
