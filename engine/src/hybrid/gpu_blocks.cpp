// gpu_blocks.h: uploads and forward passes of the decoder blocks on the GPU. Each forward
// follows its CPU block in model/ step by step (same order of operations), so the two paths
// differ only by float rounding (and bf16 activations in large cuBLAS batches).
#if defined(MOE_HAVE_CUDA)

#include "hybrid/gpu_blocks.h"

#include <atomic>
#include <string>
#include <utility>

#include "core/error.h"
#include "cuda/attention.h"
#include "cuda/basic_kernels.h"
#include "cuda/decoder_kernels.h"

namespace moe::hybrid {

namespace {
std::atomic<uint64_t> g_buffer_epoch{0};
}  // namespace

uint64_t buffer_epoch() {
    return g_buffer_epoch.load();
}

void bump_buffer_epoch() {
    ++g_buffer_epoch;
}

GpuContext::GpuContext(bool exact) : exact_(exact) {
    blas_.set_stream(stream_.get());
    MOE_CUDA(cudaEventCreateWithFlags(&done_, cudaEventBlockingSync | cudaEventDisableTiming));
}

GpuContext::~GpuContext() {
    if (done_) cudaEventDestroy(done_);
}

void GpuContext::sync_sleeping() {
    MOE_CUDA(cudaEventRecord(done_, stream()));
    MOE_CUDA(cudaEventSynchronize(done_));
}

void GpuContext::linear(const cuda::GpuMatrix& w, const float* x, int64_t T, float* y) {
    if (w.f32()) {  // fp32 weights: exact either way
        if (T < kGemmRows) {
            cuda::linear_f32_weights(w.wf.data(), w.rows, w.cols, x, T, y, stream());
        } else {
            cuda::linear(blas_, w, x, T, y, bf16_scratch_, stream());
        }
    } else if (exact_ || T < kGemmRows) {
        cuda::linear_f32_acts(w.w.data(), w.rows, w.cols, x, T, y, stream());
    } else {
        cuda::linear(blas_, w, x, T, y, bf16_scratch_, stream());
    }
}

void GpuContext::reserve_gemm_input(int64_t floats) {
    if (int64_t(bf16_scratch_.size()) < floats) {
        bf16_scratch_ = cuda::DeviceBuffer<uint16_t>(size_t(floats));
        bump_buffer_epoch();
    }
}

void GpuContext::linear_bf16(const uint16_t* w, int64_t rows, int64_t cols, const float* x,
                             int64_t T, float* y) {
    cuda::linear_bf16(blas_, w, rows, cols, x, T, y, bf16_scratch_, stream());
}

cuda::DeviceBuffer<float> upload_floats(const std::vector<float>& v, cudaStream_t s) {
    cuda::DeviceBuffer<float> d(v.size());
    if (!v.empty()) {
        d.upload(v.data(), v.size(), s);
        MOE_CUDA(cudaStreamSynchronize(s));  // `v` may go away
    }
    return d;
}

void GpuLinear::forward(GpuContext& g, const float* x, int64_t T, float* y) const {
    g.linear(w, x, T, y);
    if (bias.size()) cuda::add_bias_rows(y, bias.data(), T, out(), g.stream());
}

GpuLinear upload_linear(const Linear& l, cudaStream_t s, bool bf16) {
    if (!l.lora.empty()) {  // the GPU copy takes the adapters merged in; the CPU keeps its terms
        Linear merged = l;
        merged.merge_lora();
        return upload_linear(merged, s, bf16);
    }
    GpuLinear g;
    g.w = bf16 ? cuda::upload_bf16(l.w, s) : cuda::upload_weights(l.w, s);
    g.bias = upload_floats(l.bias, s);
    return g;
}

void GpuNorm::apply(GpuContext& g, const float* x, int64_t rows, float* y) const {
    cuda::rms_norm(x, w.data(), rows, width, eps, y, g.stream());
}

void GpuNorm::add_apply(GpuContext& g, float* x, const float* add, int64_t rows, float* y) const {
    cuda::add_rms_norm(x, add, w.data(), rows, width, eps, y, g.stream());
}

void GpuNorm::apply_strided(GpuContext& g, const float* x, int64_t rows, int64_t stride,
                            float* y) const {
    cuda::rms_norm_strided(x, w.data(), rows, width, stride, eps, y, g.stream());
}

GpuNorm upload_norm(const RmsNorm& n, cudaStream_t s) {
    GpuNorm g;
    g.w = upload_floats(n.weight, s);
    g.width = n.width();
    g.eps = n.eps;
    return g;
}

void GpuRope::apply(GpuContext& g, float* x, int64_t T, int64_t heads, int64_t stride,
                    const int32_t* positions) const {
    cuda::rope(x, T, heads, stride, positions, inv_freq.data(), rotary_dim, interleaved, scaling,
               g.stream());
}

GpuRope upload_rope(const RotaryEmbedding& r, cudaStream_t s) {
    GpuRope g;
    g.inv_freq = upload_floats(r.inv_freq, s);
    g.rotary_dim = r.rotary_dim;
    g.interleaved = r.interleaved;
    g.scaling = r.attention_scaling;
    return g;
}

void GpuLayerKv::reserve(int64_t positions, int64_t keep, cudaStream_t s) {
    if (positions <= capacity) return;
    const int64_t cap = std::max<int64_t>(positions, std::max<int64_t>(256, capacity * 2));
    cuda::DeviceBuffer<float> nk(size_t(cap * k_width)), nv(size_t(cap * v_width));
    if (keep > 0) {
        MOE_CUDA(cudaMemcpyAsync(nk.data(), k.data(), size_t(keep * k_width) * 4,
                                 cudaMemcpyDeviceToDevice, s));
        if (v_width)
            MOE_CUDA(cudaMemcpyAsync(nv.data(), v.data(), size_t(keep * v_width) * 4,
                                     cudaMemcpyDeviceToDevice, s));
    }
    MOE_CUDA(cudaStreamSynchronize(s));
    k = std::move(nk);
    v = std::move(nv);
    capacity = cap;
    bump_buffer_epoch();
}

namespace {

class GpuGqa : public GpuAttention {
  public:
    GpuGqa(const GqaAttention& a, cudaStream_t s)
        : cfg_(a.cfg),
          q_(upload_linear(a.q_proj, s)),
          k_(upload_linear(a.k_proj, s)),
          v_(upload_linear(a.v_proj, s)),
          o_(upload_linear(a.o_proj, s)),
          rope_(upload_rope(a.rope, s)),
          sinks_(upload_floats(a.sinks, s)) {
        if (cfg_.llama_cpp_f16)
            throw Error("the llama.cpp f16 attention mode is CPU-only (drop --llamacpp-attention)");
        if (cfg_.qk_norm != GqaAttentionConfig::QkNorm::None) {
            q_norm_ = upload_norm(a.q_norm, s);
            k_norm_ = upload_norm(a.k_norm, s);
        }
    }

    GpuLayerKv make_kv() const override {
        GpuLayerKv kv;
        kv.k_width = kv.v_width = cfg_.kv_heads * cfg_.head_dim;
        return kv;
    }

    void forward(GpuContext& g, const float* x, int64_t T, const int32_t* positions,
                 int64_t max_ctx, GpuLayerKv& kv, float* out) override {
        const int64_t qw = cfg_.heads * cfg_.head_dim, kw = cfg_.kv_heads * cfg_.head_dim;
        float* q = g.tmp(Slot::Q, T * qw);
        float* k = g.tmp(Slot::K, T * kw);
        float* v = g.tmp(Slot::V, T * kw);
        if (g.bf16_gemv(q_.w, T) && g.bf16_gemv(k_.w, T) && g.bf16_gemv(v_.w, T)) {
            // One launch for the three (decode: they are a third of the layer's launches).
            cuda::linear_f32_acts_3({{q_.w.w.data(), q_.out(), q},
                                     {k_.w.w.data(), k_.out(), k},
                                     {v_.w.w.data(), v_.out(), v}},
                                    q_.in(), x, T, g.stream());
            for (auto [l, y] : {std::pair{&q_, q}, std::pair{&k_, k}, std::pair{&v_, v}})
                if (l->bias.size()) cuda::add_bias_rows(y, l->bias.data(), T, l->out(), g.stream());
        } else {
            q_.forward(g, x, T, q);
            k_.forward(g, x, T, k);
            v_.forward(g, x, T, v);
        }
        g.mark("attn: q,k,v projections");
        cuda::QkPostShape post;
        post.heads = cfg_.heads;
        post.kv_heads = cfg_.kv_heads;
        post.head_dim = cfg_.head_dim;
        post.inv_freq = rope_.inv_freq.data();
        post.rotary_dim = rope_.rotary_dim;
        post.interleaved = rope_.interleaved;
        post.scaling = rope_.scaling;
        if (cfg_.qk_norm == GqaAttentionConfig::QkNorm::PerHead) {
            post.q_norm = q_norm_.w.data();
            post.k_norm = k_norm_.w.data();
            post.q_eps = q_norm_.eps;
            post.k_eps = k_norm_.eps;
        }
        if (cfg_.clip_qkv <= 0.0f && cfg_.qk_norm != GqaAttentionConfig::QkNorm::Whole &&
            cuda::qk_post_supported(post)) {
            // Norms, rotary embedding and the cache writes in one launch.
            cuda::qk_norm_rope_cache(q, k, v, T, post, positions, kv.k.data(), kv.v.data(),
                                     g.stream());
        } else {
            if (cfg_.clip_qkv > 0.0f) {
                cuda::clamp_values(q, T * qw, cfg_.clip_qkv, g.stream());
                cuda::clamp_values(k, T * kw, cfg_.clip_qkv, g.stream());
                cuda::clamp_values(v, T * kw, cfg_.clip_qkv, g.stream());
            }
            if (cfg_.qk_norm == GqaAttentionConfig::QkNorm::PerHead) {
                q_norm_.apply(g, q, T * cfg_.heads, q);
                k_norm_.apply(g, k, T * cfg_.kv_heads, k);
            } else if (cfg_.qk_norm == GqaAttentionConfig::QkNorm::Whole) {
                q_norm_.apply(g, q, T, q);
                k_norm_.apply(g, k, T, k);
            }
            rope_.apply(g, q, T, cfg_.heads, cfg_.head_dim, positions);
            rope_.apply(g, k, T, cfg_.kv_heads, cfg_.head_dim, positions);
            cuda::write_rows_at(kv.k.data(), k, T, kw, positions, g.stream());
            cuda::write_rows_at(kv.v.data(), v, T, kw, positions, g.stream());
        }
        g.mark("attn: norms, rope, cache write");

        cuda::AttentionShape shape;
        shape.heads = cfg_.heads;
        shape.kv_heads = cfg_.kv_heads;
        shape.dim_qk = shape.dim_v = cfg_.head_dim;
        shape.scale = cfg_.scale;
        shape.sliding_window = cfg_.sliding_window;
        float* attn = g.tmp(Slot::Attn, T * qw);
        if (T > 1 && cuda::tiled_attention_enabled()) {  // a prompt: no T x T scores
            cuda::attend_tiled_at(shape, q, T, positions, kv.k.data(), kw, kv.v.data(), kw,
                                  sinks_.size() ? sinks_.data() : nullptr, attn, g.stream());
        } else {
            float* scores =
                g.tmp(Slot::Scores, cuda::attention_scratch_floats(shape, T, max_ctx - T));
            cuda::attend_at(shape, q, T, positions, max_ctx, kv.k.data(), kw, kv.v.data(), kw,
                            sinks_.size() ? sinks_.data() : nullptr, attn, scores, g.stream());
        }
        g.mark("attn: attend");
        o_.forward(g, attn, T, out);
        g.mark("attn: o projection");
    }

  private:
    GqaAttentionConfig cfg_;
    GpuLinear q_, k_, v_, o_;
    GpuNorm q_norm_, k_norm_;
    GpuRope rope_;
    cuda::DeviceBuffer<float> sinks_;
};

// MLA with W_UK absorbed into the query and W_UV applied to the attended latent, as the CPU
// block does; the cache rows are [normalised latent (R), roped shared key (rope)].
class GpuMla : public GpuAttention {
  public:
    GpuMla(const MlaAttention& a, cudaStream_t s) : cfg_(a.cfg), rope_(upload_rope(a.rope, s)) {
        if (cfg_.q_lora_rank > 0) {
            q_a_ = upload_linear(a.q_a_proj, s);
            q_b_ = upload_linear(a.q_b_proj, s);
            q_a_norm_ = upload_norm(a.q_a_norm, s);
        } else {
            q_ = upload_linear(a.q_proj, s);
        }
        kv_a_ = upload_linear(a.kv_a_proj, s);
        kv_a_norm_ = upload_norm(a.kv_a_norm, s);
        o_ = upload_linear(a.o_proj, s);
        // W_UK as [H, nope, R] and W_UV as [H, vd, R] in fp32, from either stored layout.
        const int64_t H = cfg_.heads, nope = cfg_.qk_nope_dim, R = cfg_.kv_lora_rank,
                      vd = cfg_.v_head_dim;
        std::vector<float> uk(size_t(H * nope * R)), uv(size_t(H * vd * R)), row;
        for (int64_t h = 0; h < H; ++h) {
            if (a.split_kv_b) {  // k_b [H * R, nope], v_b [H * vd, R]
                row.resize(size_t(nope));
                for (int64_t r = 0; r < R; ++r) {
                    a.k_b_proj.w.row_to_f32(h * R + r, row.data());
                    for (int64_t n = 0; n < nope; ++n)
                        uk[size_t((h * nope + n) * R + r)] = row[size_t(n)];
                }
                for (int64_t d = 0; d < vd; ++d)
                    a.v_b_proj.w.row_to_f32(h * vd + d, uv.data() + (h * vd + d) * R);
            } else {  // kv_b [H * (nope + vd), R]
                for (int64_t n = 0; n < nope; ++n)
                    a.kv_b_effective().w.row_to_f32(h * (nope + vd) + n,
                                                    uk.data() + (h * nope + n) * R);
                for (int64_t d = 0; d < vd; ++d)
                    a.kv_b_effective().w.row_to_f32(h * (nope + vd) + nope + d,
                                                    uv.data() + (h * vd + d) * R);
            }
        }
        w_uk_ = upload_floats(uk, s);
        w_uv_ = upload_floats(uv, s);
    }

    GpuLayerKv make_kv() const override {
        GpuLayerKv kv;
        kv.k_width = cfg_.kv_lora_rank + cfg_.qk_rope_dim;
        kv.v_width = 0;
        return kv;
    }

    void forward(GpuContext& g, const float* x, int64_t T, const int32_t* positions,
                 int64_t max_ctx, GpuLayerKv& kv, float* out) override {
        const int64_t H = cfg_.heads, nope = cfg_.qk_nope_dim, rd = cfg_.qk_rope_dim;
        const int64_t qk = nope + rd, R = cfg_.kv_lora_rank, vd = cfg_.v_head_dim, kw = R + rd;
        float* q = g.tmp(Slot::Q, T * H * qk);
        if (cfg_.q_lora_rank > 0) {
            float* qa = g.tmp(Slot::K, T * cfg_.q_lora_rank);
            q_a_.forward(g, x, T, qa);
            q_a_norm_.apply(g, qa, T, qa);
            q_b_.forward(g, qa, T, q);
        } else {
            q_.forward(g, x, T, q);
        }
        float* row = g.tmp(Slot::Gate, T * kw);  // [latent, k_pe] rows of the cache
        kv_a_.forward(g, x, T, row);
        kv_a_norm_.apply_strided(g, row, T, kw, row);
        rope_.apply(g, row + R, T, 1, kw, positions);
        rope_.apply(g, q + nope, T, H, qk, positions);
        cuda::write_rows_at(kv.k.data(), row, T, kw, positions, g.stream());

        float* qcat = g.tmp(Slot::V, T * H * kw);
        cuda::mla_absorb_query(q, w_uk_.data(), T, H, nope, rd, R, qcat, g.stream());
        cuda::AttentionShape shape;
        shape.heads = H;
        shape.kv_heads = 1;
        shape.dim_qk = kw;
        shape.dim_v = R;
        shape.scale = cfg_.scale;
        shape.values_in_keys = true;
        float* lat = g.tmp(Slot::Latent, T * H * R);
        if (T > 1 && cuda::tiled_attention_enabled()) {
            cuda::attend_tiled_at(shape, qcat, T, positions, kv.k.data(), kw, nullptr, 0, nullptr,
                                  lat, g.stream());
        } else {
            float* scores =
                g.tmp(Slot::Scores, cuda::attention_scratch_floats(shape, T, max_ctx - T));
            cuda::attend_at(shape, qcat, T, positions, max_ctx, kv.k.data(), kw, nullptr, 0,
                            nullptr, lat, scores, g.stream());
        }
        float* o = g.tmp(Slot::Attn, T * H * vd);
        cuda::mla_value_up(lat, w_uv_.data(), T, H, R, vd, o, g.stream());
        o_.forward(g, o, T, out);
    }

  private:
    MlaAttentionConfig cfg_;
    GpuLinear q_, q_a_, q_b_, kv_a_, o_;
    GpuNorm q_a_norm_, kv_a_norm_;
    GpuRope rope_;
    cuda::DeviceBuffer<float> w_uk_, w_uv_;
};

}  // namespace

std::unique_ptr<GpuAttention> upload_attention(const AttentionBlock& a, cudaStream_t s) {
    if (const auto* gqa = dynamic_cast<const GqaAttention*>(&a))
        return std::make_unique<GpuGqa>(*gqa, s);
    if (const auto* mla = dynamic_cast<const MlaAttention*>(&a))
        return std::make_unique<GpuMla>(*mla, s);
    throw Error("this attention block has no GPU implementation");
}

void GpuMlp::forward(GpuContext& g, const float* x, int64_t T, float* out) const {
    const int64_t inter = gate.out();
    float* gv = g.tmp(Slot::Gate, T * inter);
    float* uv = g.tmp(Slot::Up, T * inter);
    gate.forward(g, x, T, gv);
    up.forward(g, x, T, uv);
    cuda::glu(gv, uv, T * inter, act.kind == ExpertActivation::Kind::ClampedSwiGlu, act.alpha,
              act.limit, gv, g.stream());
    down.forward(g, gv, T, out);
}

GpuMlp upload_mlp(const GatedMlp& m, cudaStream_t s) {
    GpuMlp g;
    g.gate = upload_linear(m.gate, s);
    g.up = upload_linear(m.up, s);
    g.down = upload_linear(m.down, s);
    return g;
}

GpuMlp upload_expert(const Expert& e, const ExpertActivation& act, cudaStream_t s) {
    GpuMlp g;
    g.gate = upload_linear(e.gate, s, true);
    g.up = upload_linear(e.up, s, true);
    g.down = upload_linear(e.down, s, true);
    g.act = act;
    return g;
}

}  // namespace moe::hybrid

#endif  // MOE_HAVE_CUDA
