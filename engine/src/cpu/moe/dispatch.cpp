// Runtime choice of the kernel variant from CPUID and the OS's XSAVE state, the
// MOE_CPU_KERNELS override, and Linux's AMX permission request.
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "core/error.h"
#include "cpu/moe/kernels_impl.h"

namespace moe {
namespace {

struct CpuFeatures {
    bool avx2 = false, fma = false, f16c = false;
    bool avx512 = false;  // F + BW + VL + BF16 + VNNI, with ZMM state enabled by the OS
    bool amx = false;     // TILE + BF16 + INT8 in CPUID (permission is asked separately)
};

uint64_t xgetbv0() {
    uint32_t eax = 0, edx = 0;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (uint64_t(edx) << 32) | eax;
}

CpuFeatures detect() {
    CpuFeatures f;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const bool osxsave = c & (1u << 27);
    f.fma = c & (1u << 12);
    f.f16c = c & (1u << 29);
    if (!osxsave) return f;
    const uint64_t xcr0 = xgetbv0();
    const bool ymm_os = (xcr0 & 0x6) == 0x6;
    const bool zmm_os = (xcr0 & 0xE6) == 0xE6;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
    f.avx2 = ymm_os && (b & (1u << 5)) && f.fma && f.f16c;
    const bool avx512f = b & (1u << 16), avx512bw = b & (1u << 30), avx512vl = b & (1u << 31);
    const bool vnni = c & (1u << 11);
    const bool amx_bf16 = d & (1u << 22), amx_tile = d & (1u << 24), amx_int8 = d & (1u << 25);
    unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
    __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
    const bool avx512bf16 = a1 & (1u << 5);
    f.avx512 = f.avx2 && zmm_os && avx512f && avx512bw && avx512vl && vnni && avx512bf16;
    f.amx = f.avx512 && amx_bf16 && amx_tile && amx_int8;
    return f;
}

const CpuFeatures& features() {
    static const CpuFeatures f = detect();
    return f;
}

}  // namespace

namespace kern {

bool request_amx_permission() {
    // ARCH_REQ_XCOMP_PERM / XFEATURE_XTILEDATA from <asm/prctl.h> (Linux 5.16+), spelled out so
    // that older headers build too. The permission is process-wide and inherited by threads.
    static const bool ok = [] {
        constexpr long kArchReqXcompPerm = 0x1023;
        constexpr long kXfeatureXtiledata = 18;
        return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
    }();
    return ok;
}

}  // namespace kern

const char* kernel_variant_name(KernelVariant v) {
    switch (v) {
        case KernelVariant::Scalar:
            return "scalar";
        case KernelVariant::Avx2:
            return "avx2";
        case KernelVariant::Avx512:
            return "avx512";
        case KernelVariant::Amx:
            return "amx";
    }
    return "?";
}

bool kernel_variant_supported(KernelVariant v) {
    const CpuFeatures& f = features();
    switch (v) {
        case KernelVariant::Scalar:
            return true;
        case KernelVariant::Avx2:
            return f.avx2;
        case KernelVariant::Avx512:
            return f.avx512;
        case KernelVariant::Amx:
            return f.amx && kern::request_amx_permission();
    }
    return false;
}

std::vector<KernelVariant> supported_kernel_variants() {
    std::vector<KernelVariant> out;
    for (auto v :
         {KernelVariant::Scalar, KernelVariant::Avx2, KernelVariant::Avx512, KernelVariant::Amx}) {
        if (kernel_variant_supported(v)) out.push_back(v);
    }
    return out;
}

void require_kernel_variant(KernelVariant v) {
    require(kernel_variant_supported(v), std::string("CPU kernels '") + kernel_variant_name(v) +
                                             "' are not supported by this CPU/OS");
}

KernelVariant default_kernel_variant() {
    static const KernelVariant v = [] {
        const char* env = std::getenv("MOE_CPU_KERNELS");
        if (env && *env) {
            for (auto c : {KernelVariant::Scalar, KernelVariant::Avx2, KernelVariant::Avx512,
                           KernelVariant::Amx}) {
                if (std::strcmp(env, kernel_variant_name(c)) == 0) {
                    require(kernel_variant_supported(c), std::string("MOE_CPU_KERNELS=") + env +
                                                             ": this CPU/OS does not support it");
                    return c;
                }
            }
            throw Error(std::string("MOE_CPU_KERNELS=") + env +
                        ": expected scalar, avx2, avx512 or amx");
        }
        return supported_kernel_variants().back();
    }();
    return v;
}

}  // namespace moe
