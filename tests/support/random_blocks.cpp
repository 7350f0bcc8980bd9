#include "random_blocks.h"

#include <cstring>

#include "core/dtype.h"

namespace moetest {

using moe::GgmlType;

namespace {

void put_f16(uint8_t* p, float v) {
    const uint16_t h = moe::f32_to_f16(v);
    std::memcpy(p, &h, 2);
}

}  // namespace

bool is_k_quant(GgmlType t) {
    return t == GgmlType::Q4_K || t == GgmlType::Q5_K || t == GgmlType::Q6_K;
}

std::vector<uint8_t> random_gguf_rows(std::mt19937& rng, GgmlType t, int64_t n, int64_t rows,
                                      size_t stride) {
    std::vector<uint8_t> w(size_t(rows) * stride);
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto& b : w) b = uint8_t(byte(rng));
    std::uniform_real_distribution<float> scale(1e-3f, 0.05f);
    std::uniform_int_distribution<int> expo(112, 132);
    const size_t bs = moe::ggml_type_size(t);
    const int64_t nblocks = n / moe::ggml_block_size(t);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < nblocks; ++i) {
            uint8_t* b = w.data() + size_t(r) * stride + size_t(i) * bs;
            switch (t) {
                case GgmlType::Q8_0:
                case GgmlType::Q4_0:
                    put_f16(b, scale(rng));
                    break;
                case GgmlType::MXFP4:
                    b[0] = uint8_t(expo(rng));
                    break;
                case GgmlType::Q4_K:
                case GgmlType::Q5_K:
                    put_f16(b, scale(rng));
                    put_f16(b + 2, scale(rng));
                    break;
                case GgmlType::Q6_K:
                    put_f16(b + bs - 2, scale(rng));
                    break;  // d is last
                default:
                    break;
            }
        }
    return w;
}

std::vector<int64_t> gguf_test_lengths(GgmlType t) {
    return is_k_quant(t) ? std::vector<int64_t>{256, 512, 2816}
                         : std::vector<int64_t>{32, 96, 4096};
}

uint32_t float_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

}  // namespace moetest
