#pragma once
// Forward passes that keep what their backward passes need ("tapes"), and those backward
// passes, for the decoder's blocks: GQA attention (biases, clip, q/k norms, partial rotary,
// sliding window, sinks), the dense gated MLP, and the MoE block (router frozen but
// differentiated through: the routing weights depend on the input; routed experts, shared
// experts and Qwen2-MoE's shared gate). A sequence starts at position 0 (training).
#include <cstdint>
#include <vector>

#include "model/attention.h"
#include "model/feed_forward.h"
#include "model/moe_block.h"
#include "train/grad_ops.h"

namespace moe::train {

struct GqaTape {
    std::vector<float> x;            // block input [T, hidden]
    std::vector<float> q0, k0, v0;   // projections (before the clip)
    std::vector<float> qn, kn;       // inputs of the q/k norms
    std::vector<float> q, k, v;      // what attention read (after norms and rotation)
    std::vector<float> probs, attn;  // attention weights, attention output (o_proj input)
};
void gqa_forward(const GqaAttention& a, const float* x, int64_t T, float* out, GqaTape& tape);
// dx (overwritten) from dout.
void gqa_backward(const GqaAttention& a, const GqaTape& tape, const float* dout, int64_t T,
                  float* dx, LoraGrads& grads);

// DeepSeek's MLA, trained without the absorption the inference path uses: per-head keys and
// values come from kv_b_proj (its adapter terms differentiated like any layer's).
struct MlaTape {
    std::vector<float> x;        // block input
    std::vector<float> qa, qan;  // q_a_proj output, its norm (q-LoRA models)
    std::vector<float> kva, c;   // kv_a_proj output [T, R + rope], the normalised latent [T, R]
    std::vector<float> q, k, v;  // attention inputs [T, H, qk], [T, H, qk], [T, H, vd]
    std::vector<float> probs, attn;
};
void mla_forward(const MlaAttention& a, const float* x, int64_t T, float* out, MlaTape& tape);
// dx (overwritten) from dout.
void mla_backward(const MlaAttention& a, const MlaTape& tape, const float* dout, int64_t T,
                  float* dx, LoraGrads& grads);

struct MlpTape {
    std::vector<float> x, g, u, h;  // input, gate and up projections, activation
};
void mlp_forward(const Linear& gate, const Linear& up, const Linear& down,
                 const ExpertActivation& act, const float* x, int64_t T, float* out, MlpTape& tape);
// dx += the gradient through the MLP.
void mlp_backward(const Linear& gate, const Linear& up, const Linear& down,
                  const ExpertActivation& act, const MlpTape& tape, const float* dout, int64_t T,
                  float* dx, LoraGrads& grads);

struct MoeTape {
    std::vector<float> x, logits;  // input, router logits [T, experts]
    Routing routing;
    // Per expert: the slots s = t * k + j routed to it (in token order), and its tape over
    // those tokens' rows (one batched pass per expert, not one per token).
    std::vector<std::vector<int64_t>> routed;
    std::vector<MlpTape> experts;
    std::vector<float> expert_out;  // per slot: the expert's output row [hidden]
    MlpTape shared;
    std::vector<float> shared_out, shared_gate;  // [T, hidden], [T] (pre-sigmoid)
};
void moe_forward(const MoeBlock& m, const float* x, int64_t T, float* out, MoeTape& tape);
// dx (overwritten) from dout.
void moe_backward(const MoeBlock& m, const MoeTape& tape, const float* dout, int64_t T, float* dx,
                  LoraGrads& grads);

}  // namespace moe::train
