// Run-time selection and registration of the GGUF SIMD row kernels (gguf_simd_kernels.h).
#include "cpu/moe/gguf_simd_kernels.h"

#include "core/cpu_info.h"

#include "cpu/float_rows.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

namespace moe {

// The per-variant tables, one per translation unit compiled from gguf_simd_impl.h.
namespace gguf_simd {
namespace avx512vnni {
GgufRowDotFn row_dot(GgmlType type);
}
namespace avxvnni {
GgufRowDotFn row_dot(GgmlType type);
}
namespace avx2 {
GgufRowDotFn row_dot(GgmlType type);
}
}  // namespace gguf_simd

namespace {

struct Variant {
    const char* name;
    GgufRowDotFn (*table)(GgmlType);
    bool (*supported)();
};

#if defined(__x86_64__) || defined(__i386__)
// CPUID with the OS's register-state check (XCR0): core/cpu_info.h. (Not
// __builtin_cpu_supports: clang 14 knows neither "f16c" nor "avxvnni" there.)
bool has_avx2() {
    const CpuFeatures& f = cpu_info().features;
    return f.avx2 && f.fma && f.f16c;
}
bool has_avx512vnni() {
    const CpuFeatures& f = cpu_info().features;
    return has_avx2() && f.avx512f && f.avx512bw && f.avx512vl && f.avx512_vnni;
}
bool has_avxvnni() {
    return has_avx2() && cpu_info().features.avx_vnni;
}
#else
bool has_avx2() {
    return false;
}
bool has_avx512vnni() {
    return false;
}
bool has_avxvnni() {
    return false;
}
#endif

constexpr Variant kVariants[] = {
    {"avx512vnni", &gguf_simd::avx512vnni::row_dot, &has_avx512vnni},
    {"avxvnni", &gguf_simd::avxvnni::row_dot, &has_avxvnni},
    {"avx2", &gguf_simd::avx2::row_dot, &has_avx2},
};

constexpr GgmlType kTypes[] = {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::MXFP4,
                               GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

}  // namespace

std::vector<GgufSimdVariant> gguf_simd_variants() {
    std::vector<GgufSimdVariant> v;
    for (const Variant& k : kVariants) v.push_back({k.name, k.supported()});
    return v;
}

GgufRowDot gguf_simd_row_dot(GgmlType type, const char* variant) {
    for (const Variant& k : kVariants)
        if (variant && std::strcmp(variant, k.name) == 0) return {k.table(type), k.name};
    return {nullptr, variant};
}

void register_gguf_simd_kernels() {
    static std::mutex mu;
    const std::lock_guard<std::mutex> lock(mu);
    register_gguf_float_rows();
    const char* only = std::getenv("MOE_GGUF_SIMD");
    if (only && !*only) only = nullptr;
    for (GgmlType t : kTypes) {
        for (const Variant& k : kVariants) {
            if (only && std::strcmp(only, k.name) != 0) continue;
            if (!k.supported()) continue;
            if (GgufRowDotFn f = k.table(t)) {
                register_gguf_row_dot(t, GgufRowDot{f, k.name});
                break;
            }
        }
    }
}

}  // namespace moe
