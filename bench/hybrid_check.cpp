// The GPU path's checks against the transformers goldens (tests/cuda/hybrid_checks.h) without
// Qt, for the GPU machine: every fixture folder under the given roots (default tests/data/hf-tiny
// and tests/data/hf-extra), four placements, two precisions. Exit status 1 on any failure.
// Built by tools/build-device-binaries.sh; run by tools/gpu-check.sh.
#include <cstdio>
#include <random>

#include "cuda/gpu.h"
#include "cuda/hybrid_checks.h"

int main(int argc, char** argv) {
    if (moe::list_gpus().empty()) {
        std::printf("no GPU: %s\n", moe::gpu_unavailable_reason().c_str());
        return 2;
    }
    std::vector<std::string> roots;
    for (int i = 1; i < argc; ++i) roots.push_back(argv[i]);
    if (roots.empty()) roots = {"tests/data/hf-tiny", "tests/data/hf-extra"};
    const uint32_t seed = std::random_device{}();
    int failures = 0, checks = 0;
    for (const auto& root : roots) {
        for (const auto& dir : moetest::fixture_dirs(root)) {
            auto results = moe_hybrid_test::run_hybrid_checks(dir, seed);
            for (auto& c : moe_hybrid_test::run_deferral_checks(dir, seed)) results.push_back(c);
            for (const auto& c : results) {
                ++checks;
                failures += !c.ok();
                std::printf("%-32s logits %.2e (bar %.0e) ids %2d/%d%s  %s %s\n", c.name.c_str(),
                            c.logits_error, c.bar, c.ids_matching, c.ids_total,
                            c.ids_required ? " (required)" : "", c.ok() ? "ok" : "FAIL",
                            c.note.c_str());
            }
        }
    }
    std::printf("seed %u: %d checks, %d failures\n", seed, checks, failures);
    return failures ? 1 : 0;
}
