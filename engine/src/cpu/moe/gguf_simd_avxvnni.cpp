// The "avxvnni" variant of the GGUF row kernels: vpdpbusd/vpdpwssd in their VEX encoding
// (AVX_VNNI, for CPUs such as Alder Lake that have it without AVX-512; the kernels themselves
// are in gguf_simd_impl.h).
#define GK_TARGET "avx2,fma,f16c,avxvnni"
#define GK_NS avxvnni
#define GK_VNNI 2
#define GK_ROWS 4
#include "cpu/moe/gguf_simd_impl.h"
