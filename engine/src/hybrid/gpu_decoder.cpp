// hybrid_model.h for CUDA builds: the decoder stack on the GPU with the routed experts split
// between GPU-resident copies and the CPU's fused operator.
//
// One MoE layer, in stream order (the host only waits once, for the router's scores):
//   GPU: h = norm(x); logits = router(h); copy logits and h to pinned host memory
//   host: wait; route (every routing rule, on the host: k ids of E per token is tiny work);
//         upload the GPU experts' token lists; queue shared experts and GPU experts on the GPU;
//         run the CPU experts (skip mask = the GPU experts) into pinned memory — meanwhile the
//         GPU works through its queue; queue the CPU sum's upload and the add
#if defined(MOE_HAVE_CUDA)

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "cuda/basic_kernels.h"
#include "cuda/decoder_kernels.h"
#include "cuda/gpu.h"
#include "hybrid/gpu_blocks.h"
#include "hybrid/hybrid_model.h"
#include "hybrid/placement_planner.h"
#include "model/decoder_model.h"

namespace moe {
namespace {

using hybrid::GpuContext;

// The KV cache of one sequence on the GPU (KvCache::backend).
struct GpuKvState : KvCacheBackend {
    const void* owner = nullptr;
    std::vector<hybrid::GpuLayerKv> layers;
};

// Pinned host memory that only grows; growing happens between forward passes' stream work.
template <class T>
T* pinned(cuda::PinnedBuffer<T>& b, int64_t n) {
    if (int64_t(b.size()) < n) b = cuda::PinnedBuffer<T>(size_t(n));
    return b.data();
}

template <class T>
T* device(cuda::DeviceBuffer<T>& b, int64_t n) {
    if (int64_t(b.size()) < n) b = cuda::DeviceBuffer<T>(size_t(n));
    return b.data();
}

struct GpuLayer {
    hybrid::GpuNorm input_norm, post_norm;
    std::unique_ptr<hybrid::GpuAttention> attention;
    std::unique_ptr<hybrid::GpuMlp> dense;  // dense layers
    const MoeBlock* moe = nullptr;          // MoE layers
    hybrid::GpuLinear router, shared_gate;
    std::unique_ptr<hybrid::GpuMlp> shared;
    std::vector<std::unique_ptr<hybrid::GpuMlp>> experts;  // null = on the CPU
    std::vector<uint8_t> gpu_mask;
};

class HybridModel final : public PlacedModel {
  public:
    HybridModel(std::unique_ptr<DecoderModel> model, const Placement& p, const HybridOptions& o)
        : cpu_(std::move(model)), options_(o), gpu_(o.exact) {
        identity_ = model_identity(*cpu_);
        p.require_model(identity_, "placement");
        require_gpu_blocks(p);
        const cudaStream_t s = gpu_.stream();
        layers_.resize(cpu_->layers.size());
        for (size_t i = 0; i < layers_.size(); ++i) {
            const DecoderLayer& L = cpu_->layers[i];
            GpuLayer& g = layers_[i];
            g.input_norm = hybrid::upload_norm(L.input_norm, s);
            g.post_norm = hybrid::upload_norm(L.post_attention_norm, s);
            g.attention = hybrid::upload_attention(*L.attention, s);
            if (const auto* m = dynamic_cast<const MoeBlock*>(L.ffn.get());
                m && !m->experts.empty()) {
                g.moe = m;
                g.router = hybrid::upload_linear(m->router.gate, s);
                if (m->shared)
                    g.shared = std::make_unique<hybrid::GpuMlp>(hybrid::upload_mlp(*m->shared, s));
                if (m->has_shared_gate) g.shared_gate = hybrid::upload_linear(m->shared_gate, s);
                g.experts.resize(m->experts.size());
                g.gpu_mask.assign(m->experts.size(), 0);
            } else if (const auto* d = dynamic_cast<const GatedMlp*>(L.ffn.get())) {
                g.dense = std::make_unique<hybrid::GpuMlp>(hybrid::upload_mlp(*d, s));
            } else {
                throw Error("layer " + std::to_string(i) +
                            ": this feed-forward block has no GPU path");
            }
        }
        final_norm_ = hybrid::upload_norm(cpu_->final_norm, s);
        if (p.embeddings == Device::Gpu) embed_ = cuda::upload_bf16(cpu_->embed, s);
        if (p.head == Device::Gpu) head_ = hybrid::upload_linear(cpu_->lm_head, s);
        placement_ = p;
        move_experts(p);
        MOE_CUDA(cudaStreamSynchronize(s));
    }

    const ModelInfo& info() const override { return cpu_->info(); }
    const Placement& placement() const override { return placement_; }

    KvCache new_cache() const override {
        auto state = std::make_shared<GpuKvState>();
        state->owner = this;
        for (const GpuLayer& l : layers_) state->layers.push_back(l.attention->make_kv());
        KvCache c;
        c.backend = std::move(state);
        return c;
    }

    void apply_placement(const Placement& p) override {
        p.require_model(identity_, "placement");
        require_gpu_blocks(p);
        require(p.embeddings == placement_.embeddings && p.head == placement_.head,
                "placement: moving the embeddings or the output head needs a reload");
        move_experts(p);
        placement_ = p;
    }

    uint64_t gpu_weight_bytes() const override { return gpu_bytes_; }

    void forward(std::span<const int32_t> tokens, KvCache& cache, std::vector<float>& logits,
                 bool all_positions) override {
        auto* kv = dynamic_cast<GpuKvState*>(cache.backend.get());
        require(kv && kv->owner == this, "this KV cache was not made by this model's new_cache()");
        const int64_t T = int64_t(tokens.size());
        require(T > 0, "forward needs at least one token");
        for (const int32_t id : tokens) {
            if (id < 0 || id >= cpu_->vocab)
                throw Error("token id " + std::to_string(id) + " is outside the vocabulary of " +
                            std::to_string(cpu_->vocab));
        }
        const int64_t chunk = std::max<int64_t>(1, options_.prefill_chunk);
        logits.clear();
        std::vector<float> part;
        for (int64_t t0 = 0; t0 < T; t0 += chunk) {
            const int64_t n = std::min(chunk, T - t0);
            const bool last = t0 + n == T;
            if (!all_positions && !last) {
                run_chunk(tokens.subspan(size_t(t0), size_t(n)), cache.size(), *kv, nullptr, false);
            } else {
                run_chunk(tokens.subspan(size_t(t0), size_t(n)), cache.size(), *kv, &part,
                          all_positions);
                logits.insert(logits.end(), part.begin(), part.end());
            }
            cache.advance(n);
        }
    }

  private:
    // The GPU path keeps every non-expert weight on the GPU (attention and dense layers are
    // what every token reads; putting them on the CPU is the CPU-only path's job).
    void require_gpu_blocks(const Placement& p) const {
        require(p.layers.size() == layers_count(), "placement: wrong number of layers");
        for (size_t i = 0; i < p.layers.size(); ++i) {
            if (p.layers[i].attention != Device::Gpu || p.layers[i].dense != Device::Gpu)
                throw Error("placement keeps the attention or dense part of layer " +
                            std::to_string(i) +
                            " on the CPU; the GPU path needs them on the GPU (raise --gpu-budget, "
                            "or run CPU-only with --gpu-budget 0)");
        }
    }
    size_t layers_count() const { return cpu_->layers.size(); }

    void move_experts(const Placement& p) {
        const cudaStream_t s = gpu_.stream();
        MOE_CUDA(cudaStreamSynchronize(s));  // nothing may still read an expert that leaves
        for (size_t i = 0; i < layers_.size(); ++i) {
            GpuLayer& g = layers_[i];
            const std::vector<Device>& want = p.layers[i].experts;
            if (!g.moe) {
                require(want.empty(), "placement: layer " + std::to_string(i) + " has no experts");
                continue;
            }
            require(want.size() == g.experts.size(), "placement: layer " + std::to_string(i) +
                                                         " lists " + std::to_string(want.size()) +
                                                         " experts, the model has " +
                                                         std::to_string(g.experts.size()));
            for (size_t e = 0; e < want.size(); ++e) {
                const bool on_gpu = want[e] == Device::Gpu;
                if (on_gpu && !g.experts[e]) {
                    g.experts[e] = std::make_unique<hybrid::GpuMlp>(
                        hybrid::upload_expert(g.moe->experts[e], g.moe->activation, s));
                } else if (!on_gpu && g.experts[e]) {
                    g.experts[e].reset();
                }
                g.gpu_mask[e] = on_gpu ? 1 : 0;
            }
        }
        MOE_CUDA(cudaStreamSynchronize(s));
        gpu_bytes_ = count_gpu_bytes();
    }

    uint64_t count_gpu_bytes() const {
        uint64_t b = embed_.bytes() + head_.bytes();
        for (const GpuLayer& g : layers_) {
            b += g.router.bytes() + g.shared_gate.bytes() + (g.shared ? g.shared->bytes() : 0) +
                 (g.dense ? g.dense->bytes() : 0);
            for (const auto& e : g.experts) b += e ? e->bytes() : 0;
        }
        return b;  // attention weights are not counted (they are fixed)
    }

    void run_chunk(std::span<const int32_t> tokens, int64_t pos0, GpuKvState& kv,
                   std::vector<float>* logits, bool all_positions) {
        const cudaStream_t s = gpu_.stream();
        const int64_t T = int64_t(tokens.size()), H = cpu_->hidden;
        for (auto& l : kv.layers) l.reserve(pos0 + T, pos0, s);
        int32_t* pos_host = pinned(pos_pinned_, T);
        for (int64_t t = 0; t < T; ++t) pos_host[t] = int32_t(pos0 + t);
        int32_t* positions = device(positions_, T);
        MOE_CUDA(cudaMemcpyAsync(positions, pos_host, size_t(T) * 4, cudaMemcpyHostToDevice, s));

        float* x = x_.get(T * H);
        float* h = h_.get(T * H);
        float* y = y_.get(T * H);
        embed(tokens, x);
        for (size_t li = 0; li < layers_.size(); ++li) {
            GpuLayer& L = layers_[li];
            L.input_norm.apply(gpu_, x, T, h);
            L.attention->forward(gpu_, h, T, pos0, positions, kv.layers[li], y);
            cuda::add_in_place(x, y, T * H, s);
            L.post_norm.apply(gpu_, x, T, h);
            if (L.dense) {
                L.dense->forward(gpu_, h, T, y);
            } else {
                moe_layer(L, h, T, y);
            }
            cuda::add_in_place(x, y, T * H, s);
        }
        if (!logits) {
            MOE_CUDA(cudaStreamSynchronize(s));
            return;
        }
        const int64_t first = all_positions ? 0 : T - 1, rows = T - first;
        final_norm_.apply(gpu_, x + first * H, rows, h);
        const int64_t V = cpu_->vocab;
        logits->resize(size_t(rows * V));
        if (placement_.head == Device::Gpu) {
            float* out = logits_.get(rows * V);
            head_.forward(gpu_, h, rows, out);
            MOE_CUDA(cudaMemcpyAsync(logits->data(), out, size_t(rows * V) * 4,
                                     cudaMemcpyDeviceToHost, s));
            MOE_CUDA(cudaStreamSynchronize(s));
        } else {
            std::vector<float> hn(size_t(rows * H));
            MOE_CUDA(cudaMemcpyAsync(hn.data(), h, hn.size() * 4, cudaMemcpyDeviceToHost, s));
            MOE_CUDA(cudaStreamSynchronize(s));
            cpu_->lm_head.forward(hn.data(), rows, logits->data());
        }
    }

    void embed(std::span<const int32_t> tokens, float* x) {
        const cudaStream_t s = gpu_.stream();
        const int64_t T = int64_t(tokens.size()), H = cpu_->hidden;
        if (placement_.embeddings == Device::Gpu) {
            int32_t* ids_host = pinned(ids_pinned_, T);
            std::copy(tokens.begin(), tokens.end(), ids_host);
            int32_t* ids = device(ids_, T);
            MOE_CUDA(cudaMemcpyAsync(ids, ids_host, size_t(T) * 4, cudaMemcpyHostToDevice, s));
            cuda::embedding_rows(embed_.w.data(), true, ids, T, H, x, s);
            return;
        }
        float* rows = pinned(cpu_out_pinned_, T * H);
        for (int64_t t = 0; t < T; ++t) cpu_->embed.row_to_f32(tokens[size_t(t)], rows + t * H);
        MOE_CUDA(cudaMemcpyAsync(x, rows, size_t(T * H) * 4, cudaMemcpyHostToDevice, s));
        MOE_CUDA(cudaStreamSynchronize(s));  // the pinned rows are reused by the first MoE layer
    }

    void moe_layer(GpuLayer& L, const float* h, int64_t T, float* y) {
        const cudaStream_t s = gpu_.stream();
        const MoeBlock& m = *L.moe;
        const int64_t H = cpu_->hidden, E = int64_t(L.experts.size());
        float* logits = router_.get(T * E);
        L.router.forward(gpu_, h, T, logits);
        float* logits_host = pinned(router_pinned_, T * E);
        MOE_CUDA(
            cudaMemcpyAsync(logits_host, logits, size_t(T * E) * 4, cudaMemcpyDeviceToHost, s));
        float* h_host = pinned(h_pinned_, T * H);
        MOE_CUDA(cudaMemcpyAsync(h_host, h, size_t(T * H) * 4, cudaMemcpyDeviceToHost, s));
        MOE_CUDA(cudaStreamSynchronize(s));
        const Routing r = m.router.route_logits(logits_host, T);

        // The GPU experts' tokens: one list per expert, packed in expert order.
        const int64_t k = r.k;
        int32_t* idx_host = pinned(idx_pinned_, T * k);
        float* w_host = pinned(w_pinned_, T * k);
        std::vector<std::pair<int32_t, int64_t>> spans;  // (expert, entries)
        bool cpu_work = false;
        int64_t n = 0;
        std::vector<int64_t> count(size_t(E), 0);
        for (int64_t i = 0; i < T * k; ++i) {
            const int32_t e = r.ids[size_t(i)];
            if (L.gpu_mask[size_t(e)]) {
                ++count[size_t(e)];
            } else {
                cpu_work = true;
            }
        }
        for (int32_t e = 0; e < E; ++e) {
            if (!count[size_t(e)]) continue;
            spans.push_back({e, count[size_t(e)]});
            for (int64_t t = 0; t < T; ++t)
                for (int64_t j = 0; j < k; ++j)
                    if (r.ids[size_t(t * k + j)] == e) {
                        idx_host[n] = int32_t(t);
                        w_host[n] = r.weights[size_t(t * k + j)];
                        ++n;
                    }
        }
        MOE_CUDA(cudaMemsetAsync(y, 0, size_t(T * H) * 4, s));
        if (L.shared) {
            float* sh = shared_.get(T * H);
            L.shared->forward(gpu_, h, T, sh);
            if (m.has_shared_gate) {
                float* gate = gate_.get(T);
                L.shared_gate.forward(gpu_, h, T, gate);
                cuda::add_sigmoid_gated_rows(y, sh, gate, T, H, s);
            } else {
                cuda::add_in_place(y, sh, T * H, s);
            }
        }
        if (n) {
            int32_t* idx = device(idx_, n);
            float* w = device(w_, n);
            MOE_CUDA(cudaMemcpyAsync(idx, idx_host, size_t(n) * 4, cudaMemcpyHostToDevice, s));
            MOE_CUDA(cudaMemcpyAsync(w, w_host, size_t(n) * 4, cudaMemcpyHostToDevice, s));
            int64_t at = 0;
            for (const auto& [e, cnt] : spans) {
                float* xe = xe_.get(cnt * H);
                float* ye = ye_.get(cnt * H);
                cuda::gather_rows(h, idx + at, cnt, H, xe, s);
                L.experts[size_t(e)]->forward(gpu_, xe, cnt, ye);
                cuda::scatter_add_rows(y, ye, idx + at, w + at, cnt, H, s);
                at += cnt;
            }
        }
        if (cpu_work) {  // runs on the host while the GPU works through the queue above
            float* out_host = pinned(cpu_out_pinned_, T * H);
            m.run_experts(h_host, T, r, out_host, L.gpu_mask.data());
            float* cpu_sum = cpu_sum_.get(T * H);
            MOE_CUDA(
                cudaMemcpyAsync(cpu_sum, out_host, size_t(T * H) * 4, cudaMemcpyHostToDevice, s));
            cuda::add_in_place(y, cpu_sum, T * H, s);
        }
    }

    std::unique_ptr<DecoderModel> cpu_;
    HybridOptions options_;
    GpuContext gpu_;
    ModelIdentity identity_;
    Placement placement_;
    std::vector<GpuLayer> layers_;
    hybrid::GpuNorm final_norm_;
    cuda::GpuMatrix embed_;
    hybrid::GpuLinear head_;
    uint64_t gpu_bytes_ = 0;
    // Activations and staging, sized by the largest batch seen.
    hybrid::Scratch x_, h_, y_, logits_, router_, shared_, gate_, xe_, ye_, cpu_sum_;
    cuda::DeviceBuffer<int32_t> positions_, ids_, idx_;
    cuda::DeviceBuffer<float> w_;
    cuda::PinnedBuffer<int32_t> pos_pinned_, ids_pinned_, idx_pinned_;
    cuda::PinnedBuffer<float> router_pinned_, h_pinned_, w_pinned_, cpu_out_pinned_;
};

}  // namespace

std::unique_ptr<PlacedModel> make_hybrid_model(std::unique_ptr<Model> model,
                                               const Placement& placement,
                                               const HybridOptions& options) {
    if (list_gpus().empty())
        throw Error("the placement puts weights on the GPU, but no GPU is usable: " +
                    gpu_unavailable_reason());
    auto* d = dynamic_cast<DecoderModel*>(model.get());
    if (!d) throw Error("this model type has no GPU path");
    model.release();
    return std::make_unique<HybridModel>(std::unique_ptr<DecoderModel>(d), placement, options);
}

}  // namespace moe

#endif  // MOE_HAVE_CUDA
