#pragma once
// The backward passes of the decoder's building blocks, in fp32 on the CPU (the reference the
// LoRA trainer is checked with against PEFT): linear layers with LoRA terms (frozen weight and
// bias, trainable A and B), RMSNorm with a frozen weight, rotary embeddings, causal attention
// with GQA, sliding windows and sinks, the gated activations, and the next-token
// cross-entropy as transformers computes it.
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/attention.h"
#include "model/linear.h"
#include "model/moe_block.h"
#include "model/norm.h"
#include "model/rope.h"

namespace moe::train {

// The gradient of one adapter term (LoraTerm: y += scale * (x A^T) B^T).
struct LoraGrad {
    std::vector<float> a;  // [rank, in]
    std::vector<float> b;  // [out, rank]
};
// By module name (Linear::name, e.g. "model.layers.0.self_attn.q_proj").
using LoraGrads = std::map<std::string, LoraGrad>;

// dx [T, in] += dy [T, out] · (W + the adapters' scale·B·A); each adapter term's gradient is
// added to grads[l.name] (sized on first use). x is the layer's input of the forward pass.
void linear_backward(const Linear& l, const float* x, const float* dy, int64_t T, float* dx,
                     LoraGrads& grads);

// dx [rows, width] = the gradient through y = rms_norm(x) · w (w frozen), rows of `stride`.
void rms_norm_backward(const RmsNorm& n, const float* x, const float* dy, int64_t rows,
                       int64_t stride, float* dx);

// The transpose of RotaryEmbedding::apply at `pos`, in place on `heads` gradient vectors.
void rope_backward(const RotaryEmbedding& r, float* d, int64_t heads, int64_t head_stride,
                   int64_t pos);

// Causal attention over one sequence starting at position 0 (training: no cache). q [T, heads,
// dim_qk], k [T, kv_heads, dim_qk], v [T, kv_heads, dim_v], out [T, heads, dim_v]; `probs`
// receives the attention weights [heads, T, T] for the backward pass.
void attention_forward(const AttentionGeometry& g, const float* q, const float* k, const float* v,
                       int64_t T, const float* sinks, float* out, std::vector<float>& probs);
// dq, dk, dv (same shapes as q, k, v; overwritten) from dout.
void attention_backward(const AttentionGeometry& g, const float* q, const float* k, const float* v,
                        const std::vector<float>& probs, const float* dout, int64_t T, float* dq,
                        float* dk, float* dv);

// h = act(g, u) elementwise (ExpertActivation); dg, du (overwritten) from dh.
void glu_backward(const ExpertActivation& act, const float* g, const float* u, const float* dh,
                  int64_t n, float* dg, float* du);

// Mean next-token cross-entropy of logits [T, vocab] over the positions t whose label
// labels[t + 1] is not -100 (transformers' shift by one); dlogits (overwritten) its gradient.
// Throws moe::Error when no position has a label.
double cross_entropy(const float* logits, int64_t T, int64_t vocab, const int32_t* labels,
                     std::vector<float>& dlogits);

}  // namespace moe::train
