#pragma once
// Routed experts resident on the GPU, all of a layer's chosen ones in three launches whatever
// the routing: the token -> expert assignments ("slots") are read from device memory, so one
// CUDA graph serves every decode step. For small batches (decode); a large batch runs each
// expert as its own GEMMs instead. CUDA builds only; all pointers are device pointers.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moe::cuda {

// One GPU-resident expert: bf16 gate/up [inter, hidden] and down [hidden, inter], fp32 biases
// or null.
struct GpuExpertWeights {
    const uint16_t* gate = nullptr;
    const uint16_t* up = nullptr;
    const uint16_t* down = nullptr;
    const float* gate_bias = nullptr;
    const float* up_bias = nullptr;
    const float* down_bias = nullptr;
};

// Token `token` sends its activations to expert `expert` with routing weight `weight`. Slots
// are ordered by token, and within a token in routing order (the order the sum is taken in).
struct ExpertSlot {
    int32_t token = 0, expert = 0;
    float weight = 0.0f;
};

struct ExpertActivationParams {
    bool clamped = false;  // gpt-oss's clamped SwiGLU (else SiLU-GLU)
    float alpha = 1.702f, limit = 7.0f;
};

// h[s] = act(gate_e x[token_s] + bg, up_e x[token_s] + bu) for the first *count of max_slots
// slots: h [max_slots, inter]. Activations fp32 throughout.
void experts_gate_up(const GpuExpertWeights* table, const ExpertSlot* slots, const int32_t* count,
                     int64_t max_slots, const float* x, int64_t hidden, int64_t inter,
                     ExpertActivationParams act, float* h, cudaStream_t s);

// ys[s] = down_e h[s] + bd: ys [max_slots, hidden].
void experts_down(const GpuExpertWeights* table, const ExpertSlot* slots, const int32_t* count,
                  int64_t max_slots, const float* h, int64_t hidden, int64_t inter, float* ys,
                  cudaStream_t s);

// y[t] += sum over the slots of token t, in slot order, of weight_s * ys[s] (T rows of hidden).
void experts_combine(const ExpertSlot* slots, const int32_t* count, int64_t max_slots,
                     const float* ys, int64_t T, int64_t hidden, float* y, cudaStream_t s);

}  // namespace moe::cuda
