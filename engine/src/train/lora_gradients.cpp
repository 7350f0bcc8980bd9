#include "train/lora_gradients.h"

#include <memory>

#include "core/error.h"
#include "train/block_grads.h"

namespace moe::train {

namespace {

// One layer's saved activations.
struct LayerTape {
    std::vector<float> x_in, x_mid;  // residual stream before the attention and the FFN
    GqaTape attention;
    MlaTape mla;
    MlpTape mlp;
    MoeTape moe;
};

// Runs layer `li` on x (updated in place to the layer's output), keeping its tape.
void layer_forward(const DecoderModel& m, size_t li, std::vector<float>& x, int64_t T,
                   LayerTape& tp) {
    const DecoderLayer& L = m.layers[li];
    std::vector<float> h(x.size()), y(x.size());
    tp.x_in = x;
    L.input_norm.apply(x.data(), T, h.data());
    if (const auto* gqa = dynamic_cast<const GqaAttention*>(L.attention.get())) {
        gqa_forward(*gqa, h.data(), T, y.data(), tp.attention);
    } else if (const auto* mla = dynamic_cast<const MlaAttention*>(L.attention.get())) {
        mla_forward(*mla, h.data(), T, y.data(), tp.mla);
    } else {
        throw Error("training: layer " + std::to_string(li) +
                    "'s attention block has no backward pass");
    }
    for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
    tp.x_mid = x;
    L.post_attention_norm.apply(x.data(), T, h.data());
    if (const auto* moe = dynamic_cast<const MoeBlock*>(L.ffn.get())) {
        moe_forward(*moe, h.data(), T, y.data(), tp.moe);
    } else if (const auto* mlp = dynamic_cast<const GatedMlp*>(L.ffn.get())) {
        mlp_forward(mlp->gate, mlp->up, mlp->down, ExpertActivation{}, h.data(), T, y.data(),
                    tp.mlp);
    } else {
        throw Error("training: layer " + std::to_string(li) +
                    "'s feed-forward block has no backward pass");
    }
    for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
}

// The forward pass to the logits: x the last residual stream, h its final norm. With `tapes`,
// each layer's tape is kept (only its input with `checkpoint`: the backward pass runs the
// layer again); without, each is dropped as soon as the next layer has its input.
struct Forward {
    std::vector<float> x, h, logits;
};
Forward forward(const DecoderModel& m, std::span<const int32_t> tokens,
                std::span<const int32_t> labels, std::vector<LayerTape>* tapes, bool checkpoint) {
    const int64_t T = int64_t(tokens.size()), H = m.hidden, V = m.vocab;
    require(T > 1, "training needs sequences of at least two tokens");
    require(labels.size() == tokens.size(), "labels and tokens differ in length");
    require(m.deferred_experts == 0, "training: expert deferral is an inference approximation");
    Forward f;
    f.x.resize(static_cast<size_t>(T * H));
    f.h.resize(f.x.size());
    for (int64_t t = 0; t < T; ++t) {
        const int32_t id = tokens[size_t(t)];
        require(id >= 0 && id < V, "token id " + std::to_string(id) + " outside the vocabulary");
        m.embed.row_to_f32(id, f.x.data() + t * H);
    }
    LayerTape scratch;
    for (size_t li = 0; li < m.layers.size(); ++li) {
        LayerTape& tp = tapes ? (*tapes)[li] : scratch;
        layer_forward(m, li, f.x, T, tp);
        if (tapes && checkpoint) tp = LayerTape{tp.x_in, {}, {}, {}, {}, {}};
    }
    m.final_norm.apply(f.x.data(), T, f.h.data());
    f.logits.resize(static_cast<size_t>(T * V));
    m.lm_head.forward(f.h.data(), T, f.logits.data());
    return f;
}

}  // namespace

double lora_loss(const DecoderModel& m, std::span<const int32_t> tokens,
                 std::span<const int32_t> labels) {
    const Forward f = forward(m, tokens, labels, nullptr, false);
    std::vector<float> dlogits;
    return cross_entropy(f.logits.data(), int64_t(tokens.size()), m.vocab, labels.data(), dlogits);
}

LossAndGrads lora_loss_and_grads(const DecoderModel& m, std::span<const int32_t> tokens,
                                 std::span<const int32_t> labels, bool checkpoint) {
    const int64_t T = int64_t(tokens.size()), H = m.hidden, V = m.vocab;
    std::vector<LayerTape> tapes(m.layers.size());
    Forward f = forward(m, tokens, labels, &tapes, checkpoint);
    std::vector<float>& x = f.x;
    std::vector<float>& h = f.h;
    LossAndGrads out;
    std::vector<float> dlogits;
    out.loss = cross_entropy(f.logits.data(), T, V, labels.data(), dlogits);

    std::vector<float> dh(static_cast<size_t>(T * H), 0.0f), dx(static_cast<size_t>(T * H)),
        d(static_cast<size_t>(T * H));
    linear_backward(m.lm_head, h.data(), dlogits.data(), T, dh.data(), out.grads);
    rms_norm_backward(m.final_norm, x.data(), dh.data(), T, H, dx.data());
    for (size_t li = m.layers.size(); li-- > 0;) {
        const DecoderLayer& L = m.layers[li];
        if (checkpoint) {
            std::vector<float> again = tapes[li].x_in;
            layer_forward(m, li, again, T, tapes[li]);
        }
        const LayerTape& tp = tapes[li];
        // x_out = x_mid + ffn(norm2(x_mid))
        std::fill(dh.begin(), dh.end(), 0.0f);
        if (const auto* moe = dynamic_cast<const MoeBlock*>(L.ffn.get())) {
            moe_backward(*moe, tp.moe, dx.data(), T, dh.data(), out.grads);
        } else {
            const auto* mlp = static_cast<const GatedMlp*>(L.ffn.get());
            mlp_backward(mlp->gate, mlp->up, mlp->down, ExpertActivation{}, tp.mlp, dx.data(), T,
                         dh.data(), out.grads);
        }
        rms_norm_backward(L.post_attention_norm, tp.x_mid.data(), dh.data(), T, H, d.data());
        for (size_t i = 0; i < dx.size(); ++i) dx[i] += d[i];
        // x_mid = x_in + attn(norm1(x_in))
        if (const auto* mla = dynamic_cast<const MlaAttention*>(L.attention.get())) {
            mla_backward(*mla, tp.mla, dx.data(), T, dh.data(), out.grads);
        } else {
            gqa_backward(static_cast<const GqaAttention&>(*L.attention), tp.attention, dx.data(), T,
                         dh.data(), out.grads);
        }
        rms_norm_backward(L.input_norm, tp.x_in.data(), dh.data(), T, H, d.data());
        for (size_t i = 0; i < dx.size(); ++i) dx[i] += d[i];
        // The layer's tape was made again for this pass: drop it, or by the first layer every
        // tape would be held again, the peak that checkpointing is there to avoid.
        if (checkpoint) tapes[li] = LayerTape{};
    }
    return out;
}

}  // namespace moe::train
