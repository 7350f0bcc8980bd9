#pragma once
// The decoder's blocks resident on the GPU (CUDA builds only): weights uploaded once from the
// loaded CPU model (model/), forward passes over device activations. Precision: weights bf16,
// activations fp32; the linear layers either keep the activations in fp32 (exact mode, and
// always for small batches, where it is also the fastest: decode reads each weight once) or
// round them to bf16 for cuBLAS tensor-core GEMMs (large batches in the default mode).
#include <cstdint>
#include <memory>
#include <vector>

#include "cuda/device_memory.h"
#include "cuda/linear.h"
#include "hybrid/gpu_timeline.h"
#include "model/attention.h"
#include "model/feed_forward.h"
#include "model/moe_block.h"

namespace moe::hybrid {

// Bumped whenever a Scratch (or another buffer the GPU decoder's launches point into) is
// reallocated: a CUDA graph recorded before holds stale pointers.
uint64_t buffer_epoch();
void bump_buffer_epoch();

// Grows `b` (pinned host or device memory) to at least n elements, bumping the buffer epoch
// when it reallocates; returns its data.
template <class Buffer>
auto grow_buffer(Buffer& b, int64_t n) {
    if (int64_t(b.size()) < n) {
        b = Buffer(size_t(n));
        bump_buffer_epoch();
    }
    return b.data();
}

// A device buffer of floats that only grows (activations sized by the batch). Growing frees
// the old buffer, which cudaFree orders after the work already queued on it.
class Scratch {
  public:
    float* get(int64_t n) {
        if (int64_t(buf_.size()) < n) {
            buf_ = cuda::DeviceBuffer<float>(size_t(n));
            bump_buffer_epoch();
        }
        return buf_.data();
    }

  private:
    cuda::DeviceBuffer<float> buf_;
};

// The temporaries of the blocks, shared by all layers (one layer runs at a time).
enum class Slot { Q, K, V, Attn, Scores, Latent, Gate, Up, Count };

// A stream, its cuBLAS handle, the block temporaries and the precision rule every block of
// one model shares.
class GpuContext {
  public:
    explicit GpuContext(bool exact);
    ~GpuContext();
    GpuContext(const GpuContext&) = delete;
    GpuContext& operator=(const GpuContext&) = delete;
    cudaStream_t stream() const { return stream_.get(); }
    // Waits for the stream asleep (a blocking-sync event) rather than spinning: used while
    // host nodes run the CPU experts, whose pool needs every core.
    void sync_sleeping();
    bool exact() const { return exact_; }
    // Batches of at least this many rows go through cuBLAS (bf16 activations) unless exact.
    static constexpr int64_t kGemmRows = 16;
    void linear(const cuda::GpuMatrix& w, const float* x, int64_t T, float* y);
    // Whether linear() takes bf16 `w` through the fp32-activation GEMV for T rows.
    bool bf16_gemv(const cuda::GpuMatrix& w, int64_t T) const {
        return !w.f32() && (exact_ || T < kGemmRows);
    }
    // Sizes the bf16 copy of GEMM inputs for up to `floats` values before a loop of GEMMs
    // (growing it between them would free memory a queued GEMM still reads).
    void reserve_gemm_input(int64_t floats);
    // bf16 weights the caller owns, through cuBLAS (large batches).
    void linear_bf16(const uint16_t* w, int64_t rows, int64_t cols, const float* x, int64_t T,
                     float* y);
    float* tmp(Slot s, int64_t n) { return slots_[size_t(s)].get(n); }
    // Profiling marks on the stream (gpu_timeline.h).
    GpuTimeline& timeline() { return timeline_; }
    void mark(const char* label) { timeline_.mark(stream(), label); }

  private:
    cuda::Stream stream_;
    cuda::Blas blas_;
    cuda::DeviceBuffer<uint16_t> bf16_scratch_;
    Scratch slots_[size_t(Slot::Count)];
    bool exact_;
    cudaEvent_t done_ = nullptr;
    GpuTimeline timeline_;
};

cuda::DeviceBuffer<float> upload_floats(const std::vector<float>& v, cudaStream_t s);

struct GpuLinear {
    cuda::GpuMatrix w;
    cuda::DeviceBuffer<float> bias;  // empty = none
    int64_t out() const { return w.rows; }
    int64_t in() const { return w.cols; }
    void forward(GpuContext& g, const float* x, int64_t T, float* y) const;
};
// Uploads `l`, with its LoRA terms merged into the GPU copy (no adapter kernels on the GPU):
// as cuda::upload_weights keeps it (bf16, or fp32 for F32/F16/FP8 weights), or as bf16.
GpuLinear upload_linear(const Linear& l, cudaStream_t s, bool bf16 = false);

struct GpuNorm {
    cuda::DeviceBuffer<float> w;
    int64_t width = 0;
    float eps = 1e-6f;
    void apply(GpuContext& g, const float* x, int64_t rows, float* y) const;
    // x += add, then y = norm(x), in one launch.
    void add_apply(GpuContext& g, float* x, const float* add, int64_t rows, float* y) const;
    void apply_strided(GpuContext& g, const float* x, int64_t rows, int64_t stride, float* y) const;
};
GpuNorm upload_norm(const RmsNorm& n, cudaStream_t s);

struct GpuRope {
    cuda::DeviceBuffer<float> inv_freq;
    int64_t rotary_dim = 0;
    bool interleaved = false;
    float scaling = 1.0f;
    void apply(GpuContext& g, float* x, int64_t T, int64_t heads, int64_t stride,
               const int32_t* positions) const;
};
GpuRope upload_rope(const RotaryEmbedding& r, cudaStream_t s);

// One layer's keys and values on the GPU, `capacity` positions of k_width / v_width floats.
struct GpuLayerKv {
    int64_t k_width = 0, v_width = 0, capacity = 0;
    cuda::DeviceBuffer<float> k, v;
    // Grows to at least `positions`, keeping the first `keep` positions.
    void reserve(int64_t positions, int64_t keep, cudaStream_t s);
};

class GpuAttention {
  public:
    virtual ~GpuAttention() = default;
    // x [T, hidden], token t at the device-side position positions[t] (all below max_ctx,
    // which kv.capacity must cover); writes the tokens' K/V into `kv` at those positions and
    // out [T, hidden]. Nothing passed by value changes between decode steps when max_ctx is the
    // cache's capacity, so a CUDA graph can replay the launches.
    virtual void forward(GpuContext& g, const float* x, int64_t T, const int32_t* positions,
                         int64_t max_ctx, GpuLayerKv& kv, float* out) = 0;
    virtual GpuLayerKv make_kv() const = 0;
};
// Uploads a GqaAttention or MlaAttention; throws moe::Error for other blocks or the
// llama.cpp-compatible f16 cache mode (a CPU-only reproduction aid).
std::unique_ptr<GpuAttention> upload_attention(const AttentionBlock& a, cudaStream_t s);

// A SiLU-gated MLP, or a routed expert with its activation and biases.
struct GpuMlp {
    GpuLinear gate, up, down;
    ExpertActivation act;
    // x [T, hidden] -> out [T, hidden] (intermediates in the Gate and Up slots).
    void forward(GpuContext& g, const float* x, int64_t T, float* out) const;
};
GpuMlp upload_mlp(const GatedMlp& m, cudaStream_t s);
// Routed experts are always bf16 on the GPU (the slot kernels read bf16; the CPU's bf16-exact
// experts round the same way).
GpuMlp upload_expert(const Expert& e, const ExpertActivation& act, cudaStream_t s);

}  // namespace moe::hybrid
