// The CUDA kernel checks of tests/cuda/cuda_kernel_checks.h without Qt, for the GPU machine.
// Build (CUDA build of the engine):
//   g++ -O2 -std=c++20 -DMOE_HAVE_CUDA=1 -Iengine/src -Itests -I/usr/local/cuda/include
//       bench/cuda_kernel_check.cpp build/engine/libmoe_engine.a
//       -L/usr/local/cuda/lib64 -lcublas -lcudart_static -lpthread -ldl -lrt -o cuda-kernel-check
// (tools/build-device-binaries.sh does this).
#include <cstdio>
#include <random>

#include <cuda_runtime_api.h>

#include "cuda/fused_kernel_checks.h"
#include "cuda/gpu.h"

int main() {
    const auto gpus = moe::list_gpus();
    if (gpus.empty()) {
        std::printf("no GPU: %s\n", moe::gpu_unavailable_reason().c_str());
        return 2;
    }
    for (const auto& g : gpus)
        std::printf("GPU %d: %s, sm_%d%d, %d SMs, %.1f GiB (%.1f free)\n", g.index, g.name.c_str(),
                    g.compute_major, g.compute_minor, g.multiprocessors,
                    double(g.total_bytes) / (1ull << 30), double(g.free_bytes) / (1ull << 30));
    int failures = 0;
    const uint32_t seed = std::random_device{}();
    // Each set separately, so that an error in one still reports the other.
    const auto run_set = [&](const char* name, auto&& checks) {
        // A runtime error left pending by the set before would be blamed on this set's first
        // launch: report it as that set's failure instead.
        if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) {
            std::printf("before %s: pending runtime error %s\n", name, cudaGetErrorName(e));
            ++failures;
        }
        try {
            for (const auto& c : checks(seed)) {
                std::printf("%-32s max rel err %.2e (bar %.0e)  %s\n", c.name.c_str(), c.error,
                            c.bar, c.ok() ? "ok" : "FAIL");
                failures += !c.ok();
            }
        } catch (const std::exception& e) {
            std::printf("%s: error: %s\n", name, e.what());
            ++failures;
        }
    };
    run_set("basic kernels", moe_cuda_test::run_basic_kernel_checks);
    run_set("decoder kernels", moe_cuda_test::run_decoder_kernel_checks);
    run_set("fused kernels", moe_cuda_test::run_fused_kernel_checks);
    run_set("(after all)", [](uint32_t) { return std::vector<moe_cuda_test::Check>{}; });
    std::printf("seed %u: %d failures\n", seed, failures);
    return failures ? 1 : 0;
}
