#pragma once
// Rotary position embeddings with the frequency schedules of transformers' rope_type
// (default, linear, llama3, yarn), partial rotary dimensions, and both pairings:
// halves (i, i + d/2) as Llama/NeoX, or interleaved (2i, 2i + 1) as DeepSeek/GPT-J.
#include <cstdint>
#include <vector>

#include "formats/hf_config.h"

namespace moe {

// YaRN's magnitude correction 0.1 * mscale * ln(scale) + 1 (1 for scale <= 1).
double yarn_get_mscale(double scale, double mscale);

struct RotaryEmbedding {
    int64_t rotary_dim = 0;          // leading dimensions of each head that rotate (even)
    bool interleaved = false;        // pairs (2i, 2i+1) instead of (i, i + rotary_dim/2)
    std::vector<float> inv_freq;     // rotary_dim / 2 frequencies
    float attention_scaling = 1.0f;  // YaRN scales cos and sin by this

    // bf16_frequencies rounds inv_freq to bf16, as transformers does to its inv_freq buffer
    // when a model is cast with .to(torch.bfloat16). Only for reproducing references made that
    // way: the rounding puts phase errors that grow with position into every rotation.
    static RotaryEmbedding create(const RopeConfig& cfg, int64_t rotary_dim,
                                  int64_t max_position_embeddings, bool interleaved,
                                  bool bf16_frequencies = false);
    // Rotates the first rotary_dim values of each of `heads` vectors spaced `head_stride`
    // floats apart, for position `pos`.
    void apply(float* v, int64_t heads, int64_t head_stride, int64_t pos) const;
};

}  // namespace moe
