#pragma once
// SIMD implementations of the GgufRowDot hook (gguf_row_dot.h) for GGUF weights used natively:
// Q8_0, Q4_0, MXFP4 (against Q8_0 activations) and Q4_K, Q5_K, Q6_K (against Q8_K).
//
// Usage: call register_gguf_simd_kernels() once at start-up, before the MoE operator runs (it
// is idempotent and thread-safe, but must not race with kernels in use, see
// register_gguf_row_dot). It picks, per type, the best variant this CPU supports (CPUID with the
// OS's register-state check, core/cpu_info.h) and registers it; on a CPU without AVX2+FMA+F16C it
// registers nothing and the scalar fallback stays in place. MOE_GGUF_SIMD=<variant> in the
// environment restricts the choice to that variant ("scalar" = register nothing) — for comparisons.
//
// Variants (each compiled with function-level target attributes only, so the binary runs on
// any x86-64; best first):
//   "avx512vnni"  AVX512_VNNI + AVX512VL (vpdpbusd/vpdpwssd on 256-bit vectors; on Zen 4 the
//                 512-bit forms are double-pumped, so 256 bits give the same throughput)
//   "avxvnni"     AVX_VNNI (the VEX encoding of the same instructions: Alder Lake and later)
//   "avx2"        AVX2 + FMA + F16C (vpmaddubsw/vpmaddwd, as ggml's AVX2 path)
//
// Every variant is bit-exact with the scalar moe::vec_dot (see gguf_simd_impl.h for how).
// Each call processes several rows together, so the activation-side work (loads, permuting
// the Q8_K quants, block sums) is shared across rows; it uses a per-thread scratch buffer of
// about n bytes (+ n bytes for Q6_K).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cpu/moe/gguf_row_dot.h"
#include "formats/ggml_types.h"

namespace moe {

using GgufRowDotFn = void (*)(const void* weight_rows, size_t row_bytes, int64_t rows,
                              const void* act, int64_t n, float* out);

// Registers the best supported SIMD variant for each type listed above (nothing when the CPU
// lacks AVX2+FMA+F16C or MOE_GGUF_SIMD=scalar). Call once at start-up; calling again is
// harmless.
void register_gguf_simd_kernels();

struct GgufSimdVariant {
    const char* name;  // "avx512vnni", "avxvnni", "avx2"
    bool supported;    // this CPU (and OS) can run it
};
// All compiled-in variants, best first (for tests and benchmarks).
std::vector<GgufSimdVariant> gguf_simd_variants();

// The kernel of `variant` for `type` (its `variant` field is the variant name), or a null
// dot_rows if that variant has none for the type or the name is unknown. Does not check CPU
// support: only call it for a variant with supported == true.
GgufRowDot gguf_simd_row_dot(GgmlType type, const char* variant);

}  // namespace moe
