// The "avx512vnni" variant of the GGUF row kernels: vpdpbusd/vpdpwssd with EVEX encoding on
// 256-bit vectors (AVX512_VNNI + AVX512VL), which also gives the compiler 32 vector registers
// for the 4-row blocking (the kernels themselves are in gguf_simd_impl.h).
#define GK_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define GK_NS avx512vnni
#define GK_VNNI 1
#define GK_ROWS 4
#include "cpu/moe/gguf_simd_impl.h"
