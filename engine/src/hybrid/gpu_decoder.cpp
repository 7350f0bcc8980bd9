// hybrid_model.h for CUDA builds: the decoder stack on the GPU, the routed experts split by the
// placement between GPU-resident copies and the CPU's fused operator (gpu_moe_layer.h), and
// decode steps replayed from a CUDA graph that includes the CPU work as host-function nodes.
//
// Every launch of a step reads its inputs (token ids, positions) from pinned buffers the host
// fills before the step, and the attention reads positions on the device, so the launches of
// one decode step are the same for every token: recorded once, replayed per token. A graph is
// recorded again when a pointer it holds may have changed: the KV cache grew, a buffer was
// reallocated (hybrid::buffer_epoch), the placement changed, or another sequence's cache is used.
#if defined(MOE_HAVE_CUDA)

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "core/error.h"
#include "core/trace.h"
#include "core/worker_pool.h"
#include "cuda/basic_kernels.h"
#include "cuda/gpu.h"
#include "hybrid/gpu_blocks.h"
#include "hybrid/gpu_moe_layer.h"
#include "hybrid/hybrid_model.h"
#include "hybrid/placement_planner.h"
#include "model/decoder_model.h"

namespace moe {
namespace {

using hybrid::GpuContext;
using hybrid::StepMode;

// The KV cache of one sequence on the GPU (KvCache::backend).
struct GpuKvState : KvCacheBackend {
    const void* owner = nullptr;
    uint64_t id = 0;  // unique per sequence (an address may be reused)
    std::vector<hybrid::GpuLayerKv> layers;
};

struct GpuLayer {
    hybrid::GpuNorm input_norm, post_norm;
    std::unique_ptr<hybrid::GpuAttention> attention;
    std::unique_ptr<hybrid::GpuMlp> dense;     // dense layers
    std::unique_ptr<hybrid::GpuMoeLayer> moe;  // MoE layers
};

// A recorded decode step and what it was recorded against.
struct DecodeGraph {
    cudaGraphExec_t exec = nullptr;
    uint64_t kv_id = 0;
    int64_t capacity = 0;
    uint64_t epoch = 0, placement_version = 0;
    bool signalled = false;  // host work as signalled steps (else host-function nodes)
    ~DecodeGraph() {
        if (exec) cudaGraphExecDestroy(exec);
    }
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
                g.moe = std::make_unique<hybrid::GpuMoeLayer>(*m, s);
            } else if (const auto* d = dynamic_cast<const GatedMlp*>(L.ffn.get())) {
                g.dense = std::make_unique<hybrid::GpuMlp>(hybrid::upload_mlp(*d, s));
            } else {
                throw Error("layer " + std::to_string(i) +
                            ": this feed-forward block has no GPU path");
            }
        }
        staging_.stream_policy =
            o.stream_experts == ExpertStreaming::Never    ? hybrid::StreamPolicy::Never
            : o.stream_experts == ExpertStreaming::Always ? hybrid::StreamPolicy::Always
                                                          : hybrid::StreamPolicy::Auto;
        final_norm_ = hybrid::upload_norm(cpu_->final_norm, s);
        if (p.embeddings == Device::Gpu) embed_ = cuda::upload_weights(cpu_->embed, s);
        if (p.head == Device::Gpu) head_ = hybrid::upload_linear(cpu_->lm_head, s);
        placement_ = p;
        move_experts(p);
        // Large prefill batches may stream CPU-resident experts: lock their pages once now.
        if (!o.exact && o.stream_experts != ExpertStreaming::Never) {
            staging_.streamer = std::make_unique<hybrid::ExpertStreamer>();
            for (const GpuLayer& l : layers_) {
                const ExpertBank* b = l.moe ? l.moe->bank() : nullptr;
                if (b && hybrid::ExpertStreamer::streamable(*b)) staging_.streamer->pin(*b);
            }
        }
        MOE_CUDA(cudaStreamSynchronize(s));
        staging_.profile.enabled = std::getenv("MOE_HYBRID_PROFILE") != nullptr;
        // The CPU workers idle while the GPU runs each layer's attention (tens of microseconds):
        // spinning through that instead of sleeping saves their wake-up. On the H200 machine
        // of docs/benchmarks.md (48-layer Qwen3-30B-A3B shape, deferral 2) 2 ms gave 64 tok/s
        // against 58 with the pool's default 100 us. MOE_POOL_SPIN_US still decides when set.
        if (!std::getenv("MOE_POOL_SPIN_US")) {
            saved_spin_ = default_worker_pool().spin();
            default_worker_pool().set_spin(std::max(*saved_spin_, std::chrono::microseconds(2000)));
        }
    }

    ~HybridModel() override {
        if (saved_spin_) default_worker_pool().set_spin(*saved_spin_);
        if (staging_.profile.enabled)
            std::fprintf(stderr, "%s\n%s\n",
                         staging_.profile.summary(int64_t(layers_.size())).c_str(),
                         gpu_.timeline().summary(staging_.profile.steps).c_str());
    }

    const ModelInfo& info() const override { return cpu_->info(); }
    const Placement& placement() const override { return placement_; }
    const DecoderModel& decoder() const override { return *cpu_; }

    void set_decode_profiling(bool on) override {
        hybrid::StepProfile& p = staging_.profile;
        if (on && !p.enabled) {
            p.seconds = {};
            p.step_seconds = 0;
            p.steps = p.signalled_steps = 0;
        }
        p.enabled = on;
    }
    DecodeProfile decode_profile() const override {
        const hybrid::StepProfile& p = staging_.profile;
        return {p.steps, p.step_seconds, p.seconds[hybrid::StepProfile::GpuWait],
                p.seconds[hybrid::StepProfile::Route], p.seconds[hybrid::StepProfile::CpuExperts]};
    }

    KvCache new_cache() const override {
        auto state = std::make_shared<GpuKvState>();
        state->owner = this;
        state->id = ++next_kv_id_;
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
        // Tracing (core/trace.h): a step span per call; the host stages (StageTimer) and, in
        // eagerly run steps, the GPU stretches between the timeline's marks (a lane of their
        // own) are recorded while a capture runs. Graph replays have no marks.
        trace::Scope step_span(trace::Stage::Step, T == 1 ? "decode step" : "prefill", -1,
                               cache.size());
        if (trace::enabled()) trace::set_context(-1, cache.size());
        hybrid::StepProfile& prof = staging_.profile;
        prof.active = prof.enabled && T == 1;
        gpu_.timeline().set_active(prof.active || trace::enabled());
        const auto t0 = std::chrono::steady_clock::now();
        struct EndProfile {
            hybrid::StepProfile& p;
            std::chrono::steady_clock::time_point t0;
            ~EndProfile() {
                if (!p.active) return;
                p.active = false;
                p.step_seconds +=
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                ++p.steps;
            }
        } end_profile{prof, t0};
        struct EndTimeline {
            hybrid::GpuTimeline& t;
            ~EndTimeline() { t.set_active(false); }
        } end_timeline{gpu_.timeline()};
        if (T == 1 && options_.cuda_graphs) {
            decode_with_graph(tokens[0], cache.size(), *kv, logits);
            cache.advance(1);
            return;
        }
        const int64_t chunk = std::max<int64_t>(1, options_.prefill_chunk);
        logits.clear();
        std::vector<float> part;
        for (int64_t t0 = 0; t0 < T; t0 += chunk) {
            const int64_t n = std::min(chunk, T - t0);
            const bool want = all_positions || t0 + n == T;
            run_step(tokens.subspan(size_t(t0), size_t(n)), cache.size(), *kv,
                     want ? &part : nullptr, all_positions);
            if (want) logits.insert(logits.end(), part.begin(), part.end());
            cache.advance(n);
        }
    }

  private:
    // The GPU path keeps every non-expert weight on the GPU (attention and dense layers are
    // what every token reads; putting them on the CPU is the CPU-only path's job).
    void require_gpu_blocks(const Placement& p) const {
        require(p.layers.size() == cpu_->layers.size(), "placement: wrong number of layers");
        for (size_t i = 0; i < p.layers.size(); ++i) {
            if (p.layers[i].attention != Device::Gpu || p.layers[i].dense != Device::Gpu)
                throw Error("placement keeps the attention or dense part of layer " +
                            std::to_string(i) +
                            " on the CPU; the GPU path needs them on the GPU (raise --gpu-budget, "
                            "or run CPU-only with --gpu-budget 0)");
        }
    }

    void move_experts(const Placement& p) {
        const cudaStream_t s = gpu_.stream();
        for (size_t i = 0; i < layers_.size(); ++i) {
            const std::vector<Device>& want = p.layers[i].experts;
            if (!layers_[i].moe) {
                require(want.empty(), "placement: layer " + std::to_string(i) + " has no experts");
                continue;
            }
            layers_[i].moe->set_experts(want, s);
        }
        ++placement_version_;
    }

    // Writes the step's token ids and positions where its launches read them.
    void stage_inputs(std::span<const int32_t> tokens, int64_t pos0) {
        const int64_t T = int64_t(tokens.size());
        int32_t* ids = hybrid::grow_buffer(ids_host_, T);
        int32_t* pos = hybrid::grow_buffer(pos_host_, T);
        for (int64_t t = 0; t < T; ++t) {
            ids[t] = tokens[size_t(t)];
            pos[t] = int32_t(pos0 + t);
        }
    }

    void run_step(std::span<const int32_t> tokens, int64_t pos0, GpuKvState& kv,
                  std::vector<float>* logits, bool all_positions) {
        const int64_t T = int64_t(tokens.size());
        for (auto& l : kv.layers) l.reserve(pos0 + T, pos0, gpu_.stream());
        stage_inputs(tokens, pos0);
        const int64_t max_ctx = T == 1 ? kv.layers.front().capacity : pos0 + T;
        const int64_t rows = !logits ? 0 : all_positions ? T : 1;
        enqueue_step(T, max_ctx, kv, rows, StepMode::Eager);
        MOE_CUDA(cudaStreamSynchronize(gpu_.stream()));
        if (gpu_.timeline().active()) gpu_.timeline().collect();
        if (logits) copy_logits(rows, *logits);
    }

    void decode_with_graph(int32_t token, int64_t pos0, GpuKvState& kv,
                           std::vector<float>& logits) {
        for (auto& l : kv.layers) l.reserve(pos0 + 1, pos0, gpu_.stream());
        const int64_t capacity = kv.layers.front().capacity;
        const bool stale = !graph_.exec || graph_.kv_id != kv.id || graph_.capacity != capacity ||
                           graph_.epoch != hybrid::buffer_epoch() ||
                           graph_.placement_version != placement_version_;
        const std::array<int32_t, 1> one{token};
        if (stale) {
            // Run this step eagerly (which also sizes every buffer for one token), then record
            // the same launches for the next steps.
            run_step(one, pos0, kv, &logits, false);
            record_graph(kv, capacity);
            return;
        }
        stage_inputs(one, pos0);
        if (graph_.signalled) {
            // The host thread runs the recorded routing and CPU experts as the stream reaches
            // them; the launches are the graph's.
            try {
                staging_.host.replay_signalled(graph_.exec, gpu_.stream());
            } catch (...) {
                (void)cudaStreamSynchronize(gpu_.stream());
                throw;
            }
            MOE_CUDA(cudaStreamSynchronize(gpu_.stream()));
            if (staging_.profile.active) ++staging_.profile.signalled_steps;
        } else {
            MOE_CUDA(cudaGraphLaunch(graph_.exec, gpu_.stream()));
            gpu_.sync_sleeping();
            staging_.host.rethrow_pending();
        }
        copy_logits(1, logits);
    }

    void record_graph(GpuKvState& kv, int64_t capacity) {
        if (graph_.exec) {
            MOE_CUDA(cudaGraphExecDestroy(graph_.exec));
            graph_.exec = nullptr;
        }
        staging_.host.clear_recorded();
        const cudaStream_t s = gpu_.stream();
        const uint64_t epoch = hybrid::buffer_epoch();
        // Host work as signalled steps (the host thread runs it), else as host-function nodes.
        const bool signalled = options_.signalled_steps;
        cudaGraph_t graph = nullptr;
        MOE_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
        try {
            if (signalled) staging_.host.record_signalled(true);
            enqueue_step(1, capacity, kv, 1, signalled ? StepMode::Signalled : StepMode::Graph);
            staging_.host.record_signalled(false);
        } catch (...) {
            staging_.host.record_signalled(false);
            cudaStreamEndCapture(s, &graph);
            if (graph) cudaGraphDestroy(graph);
            throw;
        }
        MOE_CUDA(cudaStreamEndCapture(s, &graph));
        const cudaError_t e = cudaGraphInstantiate(&graph_.exec, graph, 0);
        cudaGraphDestroy(graph);
        MOE_CUDA(e);
        if (hybrid::buffer_epoch() != epoch) {  // a buffer grew while recording: not reusable
            MOE_CUDA(cudaGraphExecDestroy(graph_.exec));
            graph_.exec = nullptr;
            return;
        }
        graph_.kv_id = kv.id;
        graph_.capacity = capacity;
        graph_.epoch = epoch;
        graph_.placement_version = placement_version_;
        graph_.signalled = signalled;
    }

    // Queues one step of T tokens (inputs staged) and, for `rows` last positions, the logits
    // into pinned memory.
    void enqueue_step(int64_t T, int64_t max_ctx, GpuKvState& kv, int64_t rows, StepMode mode) {
        const cudaStream_t s = gpu_.stream();
        const int64_t H = cpu_->hidden;
        int32_t* positions = hybrid::grow_buffer(positions_, T);
        MOE_CUDA(
            cudaMemcpyAsync(positions, pos_host_.data(), size_t(T) * 4, cudaMemcpyHostToDevice, s));
        float* x = x_.get(T * H);
        float* h = h_.get(T * H);
        float* y = y_.get(T * H);
        staging_.begin_step();
        embed(T, x, mode);
        // MOE_HYBRID_TRACE=1: an eager batch's time per layer part (a synchronisation after
        // each part), printed to stderr.
        static const bool trace = std::getenv("MOE_HYBRID_TRACE") != nullptr;
        const bool timed = trace && mode == StepMode::Eager && T > 1;
        double attention_s = 0, ffn_s = 0;
        auto lap = [&, t = std::chrono::steady_clock::now()](double& into) mutable {
            MOE_CUDA(cudaStreamSynchronize(s));
            const auto now = std::chrono::steady_clock::now();
            into += std::chrono::duration<double>(now - t).count();
            t = now;
        };
        // Each residual update x += y is fused into the norm that follows it.
        for (size_t li = 0; li < layers_.size(); ++li) {
            GpuLayer& L = layers_[li];
            // Always (one relaxed store): host steps recorded into a graph keep this layer for
            // their spans when the graph is replayed during a later capture.
            trace::set_layer(int32_t(li));
            gpu_.mark("layer start");
            if (li == 0) {
                L.input_norm.apply(gpu_, x, T, h);
            } else {
                L.input_norm.add_apply(gpu_, x, y, T, h);
            }
            gpu_.mark("residual add, input norm");
            L.attention->forward(gpu_, h, T, positions, max_ctx, kv.layers[li], y);
            L.post_norm.add_apply(gpu_, x, y, T, h);
            if (timed) lap(attention_s);
            gpu_.mark("residual add, post norm");
            if (L.dense) {
                L.dense->forward(gpu_, h, T, y);
                hybrid::GpuMoeLayer::add_pending(gpu_, staging_, T, H, y, mode);
                gpu_.mark("dense MLP");
            } else {
                // Expert deferral as in DecoderModel::forward: every MoE layer but the last.
                const int64_t defer = li + 1 < layers_.size() ? cpu_->deferred_experts : 0;
                L.moe->forward(gpu_, staging_, h, T, y, mode, defer);
            }
            if (timed) lap(ffn_s);
        }
        trace::set_layer(-1);
        if (timed)
            std::fprintf(stderr, "batch of %lld tokens: attention %.2f ms, feed-forward %.2f ms\n",
                         (long long)T, 1e3 * attention_s, 1e3 * ffn_s);
        if (rows == 0) return;  // the last residual update is not needed: no logits wanted
        gpu_.mark("layer start");
        if (layers_.empty()) {
            final_norm_.apply(gpu_, x + (T - rows) * H, rows, h);
        } else {
            final_norm_.add_apply(gpu_, x + (T - rows) * H, y + (T - rows) * H, rows, h);
        }
        const int64_t V = cpu_->vocab;
        float* out = hybrid::grow_buffer(logits_host_, rows * V);
        if (placement_.head == Device::Gpu) {
            float* dl = logits_.get(rows * V);
            head_.forward(gpu_, h, rows, dl);
            MOE_CUDA(cudaMemcpyAsync(out, dl, size_t(rows * V) * 4, cudaMemcpyDeviceToHost, s));
        } else {
            float* hn = hybrid::grow_buffer(head_in_host_, rows * H);
            MOE_CUDA(cudaMemcpyAsync(hn, h, size_t(rows * H) * 4, cudaMemcpyDeviceToHost, s));
            staging_.host.run(s, mode,
                              [this, hn, rows, out] { cpu_->lm_head.forward(hn, rows, out); });
        }
    }

    void copy_logits(int64_t rows, std::vector<float>& logits) {
        const size_t n = size_t(rows * cpu_->vocab);
        logits.resize(n);
        std::memcpy(logits.data(), logits_host_.data(), n * 4);
    }

    void embed(int64_t T, float* x, StepMode mode) {
        const cudaStream_t s = gpu_.stream();
        const int64_t H = cpu_->hidden;
        if (placement_.embeddings == Device::Gpu) {
            int32_t* ids = hybrid::grow_buffer(ids_, T);
            MOE_CUDA(
                cudaMemcpyAsync(ids, ids_host_.data(), size_t(T) * 4, cudaMemcpyHostToDevice, s));
            cuda::embedding_rows(embed_.f32() ? static_cast<const void*>(embed_.wf.data())
                                              : static_cast<const void*>(embed_.w.data()),
                                 !embed_.f32(), ids, T, H, x, s);
            return;
        }
        float* rows = hybrid::grow_buffer(embed_host_, T * H);
        staging_.host.run(s, mode, [this, rows, T, H] {
            for (int64_t t = 0; t < T; ++t)
                cpu_->embed.row_to_f32(ids_host_.data()[t], rows + t * H);
        });
        MOE_CUDA(cudaMemcpyAsync(x, rows, size_t(T * H) * 4, cudaMemcpyHostToDevice, s));
    }

    std::unique_ptr<DecoderModel> cpu_;
    std::optional<std::chrono::microseconds> saved_spin_;  // the pool's spin before this model
    HybridOptions options_;
    GpuContext gpu_;
    ModelIdentity identity_;
    Placement placement_;
    uint64_t placement_version_ = 0;
    mutable uint64_t next_kv_id_ = 0;
    std::vector<GpuLayer> layers_;
    hybrid::GpuNorm final_norm_;
    cuda::GpuMatrix embed_;
    hybrid::GpuLinear head_;
    hybrid::MoeStaging staging_;
    DecodeGraph graph_;
    // Activations and staging, sized by the largest batch seen.
    hybrid::Scratch x_, h_, y_, logits_;
    cuda::DeviceBuffer<int32_t> positions_, ids_;
    cuda::PinnedBuffer<int32_t> pos_host_, ids_host_;
    cuda::PinnedBuffer<float> logits_host_, head_in_host_, embed_host_;
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
