// The "avx2" variant of the GGUF row kernels: AVX2 + FMA + F16C, products via
// vpmaddubsw/vpmaddwd (the kernels themselves are in gguf_simd_impl.h).
#define GK_TARGET "avx2,fma,f16c"
#define GK_NS avx2
#define GK_VNNI 0
#define GK_ROWS 4
#include "cpu/moe/gguf_simd_impl.h"
