// moe-kernel-check: a Qt-free driver that runs every packed-expert kernel variant this CPU
// supports against the scalar kernel and the fp32 references, and the fused MoE operator
// against run_experts_reference, printing one table row per case. Used on machines without Qt
// (the AMX host); the Qt Test suites tst_moe_kernels / tst_fused_moe check the same things.
//
// Build (no CMake target, so that it needs nothing beyond the engine library):
//   g++ -O2 -std=c++20 -Iengine/src -Itests/engine bench/moe_kernel_check.cpp
//     build/engine/libmoe_engine.a -lpthread -o moe-kernel-check
// Exit status 1 when any case misses its bar.
#include <cstdio>

#include "tst_moe_kernels_common.h"

using namespace moe_test;

int main() {
    int failures = 0;
    std::printf("variants:");
    for (auto v : supported_kernel_variants()) std::printf(" %s", kernel_variant_name(v));
    std::printf("\n%-7s %-14s %5s %5s %3s %3s  %10s %10s %10s  %s\n", "variant", "format", "rows",
                "cols", "T", "gu", "vs_scalar", "vs_dequant", "vs_source", "ok");
    struct Fmt {
        const char* name;
        PackOptions opt;
    };
    std::vector<Fmt> fmts;
    fmts.push_back({"bf16", {PackedFormat::BF16, 32, false, false}});
    fmts.push_back({"bf16/f32-acts", {PackedFormat::BF16, 32, false, false, true}});
    fmts.push_back({"int8", {PackedFormat::INT8, 32, false, false}});
    fmts.push_back({"int4/g32", {PackedFormat::INT4, 32, false, false}});
    fmts.push_back({"int4/g64min", {PackedFormat::INT4, 64, true, false}});
    fmts.push_back({"int4/g128h", {PackedFormat::INT4, 128, false, true}});
    const int64_t shapes[][2] = {{16, 64}, {37, 100}, {130, 300}, {64, 1000}};
    uint32_t seed = 1;
    for (auto v : supported_kernel_variants()) {
        for (const Fmt& f : fmts) {
            for (auto& s : shapes) {
                for (int64_t T : {1, 3, 17, 64}) {
                    for (bool gu : {false, true}) {
                        const KernelErrors e = check_kernel(v, f.opt, s[0], s[1], T, gu, seed++);
                        const double bar = format_bar(f.opt.format);
                        const bool ok = e.vs_scalar < scalar_bar(v, f.opt.format) &&
                                        e.vs_dequant < bar &&
                                        (s[0] * T * (gu ? 2 : 1) < 128 || e.vs_source < bar);
                        failures += !ok;
                        std::printf("%-7s %-14s %5lld %5lld %3lld %3d  %10.2e %10.2e %10.2e  %s\n",
                                    kernel_variant_name(v), f.name, (long long)s[0],
                                    (long long)s[1], (long long)T, int(gu), e.vs_scalar,
                                    e.vs_dequant, e.vs_source, ok ? "ok" : "FAIL");
                    }
                }
            }
        }
    }
    // Q4K (GGUF Q4_K repacked) needs K in whole 256-element super-blocks.
    const int64_t q4k_shapes[][2] = {{16, 256}, {37, 512}, {130, 768}};
    const PackOptions q4k{PackedFormat::Q4K, 32, false, false};
    for (auto v : supported_kernel_variants()) {
        for (auto& s : q4k_shapes) {
            for (int64_t T : {1, 3, 17, 64}) {
                for (bool gu : {false, true}) {
                    const KernelErrors e = check_kernel(v, q4k, s[0], s[1], T, gu, seed++);
                    const double bar = format_bar(PackedFormat::Q4K);
                    const bool ok = e.vs_scalar < 1e-5 && e.vs_dequant < bar && e.vs_source < bar;
                    failures += !ok;
                    std::printf("%-7s %-14s %5lld %5lld %3lld %3d  %10.2e %10.2e %10.2e  %s\n",
                                kernel_variant_name(v), "q4k", (long long)s[0], (long long)s[1],
                                (long long)T, int(gu), e.vs_scalar, e.vs_dequant, e.vs_source,
                                ok ? "ok" : "FAIL");
                }
            }
        }
    }
    std::printf("\nfused_moe vs run_experts_reference\n");
    for (auto v : supported_kernel_variants()) {
        for (const Fmt& f : fmts) {
            for (int64_t T : {1, 100}) {
                for (int64_t k : {2, 8}) {
                    FusedCase c;
                    c.T = T;
                    c.k = k;
                    c.opt = f.opt;
                    c.mask = true;
                    c.biases = k == 8;
                    c.clamped_swiglu = T == 100;
                    const double err = check_fused(v, c, seed++);
                    const bool ok = err < format_bar(f.opt.format);
                    failures += !ok;
                    std::printf("%-7s %-14s T=%-3lld k=%lld  err %.2e  %s\n",
                                kernel_variant_name(v), f.name, (long long)T, (long long)k, err,
                                ok ? "ok" : "FAIL");
                }
            }
        }
    }
    std::printf("\n%d failures\n", failures);
    return failures ? 1 : 0;
}
