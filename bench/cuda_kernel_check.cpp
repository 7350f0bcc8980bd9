// The CUDA kernel checks of tests/cuda/cuda_kernel_checks.h without Qt, for the GPU machine.
// Build (CUDA build of the engine):
//   g++ -O2 -std=c++20 -DMOE_HAVE_CUDA=1 -Iengine/src -Itests -I/usr/local/cuda/include
//       bench/cuda_kernel_check.cpp build/engine/libmoe_engine.a
//       -L/usr/local/cuda/lib64 -lcublas -lcudart_static -lpthread -ldl -lrt -o cuda-kernel-check
// (tools/build-device-binaries.sh does this).
#include <cstdio>
#include <random>

#include "cuda/cuda_kernel_checks.h"
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
    try {
        for (const auto& c : moe_cuda_test::run_basic_kernel_checks(seed)) {
            std::printf("%-32s max rel err %.2e (bar %.0e)  %s\n", c.name.c_str(), c.error, c.bar,
                        c.ok() ? "ok" : "FAIL");
            failures += !c.ok();
        }
    } catch (const std::exception& e) {
        std::printf("error: %s\n", e.what());
        return 1;
    }
    std::printf("seed %u: %d failures\n", seed, failures);
    return failures ? 1 : 0;
}
