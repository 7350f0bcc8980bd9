#pragma once
// Large prefill batches with CPU-resident experts: instead of multiplying on the CPU, copy
// each needed expert's packed bytes (the CPU operator's own layout, cpu/moe/moe_kernels.h)
// to the GPU, unpack them to bf16 there and multiply with cuBLAS. The copy of expert i + 1
// runs on a stream of its own while expert i computes (two staging slots).
//
// Whether a layer streams is decided per batch by a cost model fed with what was measured on
// this machine (ExpertCostModel): the host-to-GPU bandwidth seen by earlier streamed layers
// (first, a probe copy) against the CPU operator's time per (token, expert) assignment seen
// by earlier CPU layers (first, a prior). CUDA builds only.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "cpu/moe/fused_moe.h"
#include "cuda/device_memory.h"
#include "hybrid/gpu_blocks.h"

namespace moe::hybrid {

enum class StreamPolicy { Auto, Never, Always };

struct ExpertCostModel {
    double h2d_bytes_per_s = 0;           // effective (copy + unpack + GEMMs); 0 = not probed
    double cpu_s_per_assignment = 10e-6;  // prior: a 30B-A3B-sized Q4 expert row set, 16 cores
    // Exponential averages of new measurements (weight of the newest).
    static constexpr double kNewest = 0.3;
    void note_cpu(double seconds, int64_t assignments);
    void note_stream(double seconds, uint64_t bytes);
};

class ExpertStreamer {
  public:
    ExpertStreamer();
    ~ExpertStreamer();
    ExpertStreamer(const ExpertStreamer&) = delete;
    ExpertStreamer& operator=(const ExpertStreamer&) = delete;

    // One part per expert (no NUMA split), packed gate/up and down, no biases.
    static bool streamable(const ExpertBank& bank);
    // Bytes that streaming `expert` moves.
    static uint64_t stream_bytes(const ExpertBank& bank, int64_t expert);
    // Measures the host-to-GPU copy rate of pageable memory once (bytes per second).
    double probe_bandwidth();
    // Page-locks the bank's packed arrays (where the OS allows: a range sharing a page with one
    // locked before is left pageable), so that streaming them runs at DMA speed. Unlocked when
    // the streamer goes, which must be before the bank.
    void pin(const ExpertBank& bank);
    uint64_t pinned_bytes() const { return pinned_bytes_; }

    struct Job {
        int32_t expert = 0;
        int64_t first = 0, count = 0;  // its entries in the token / weight lists
    };
    // y[idx[i]] += w[i] * expert(h[idx[i]]) for every job's entries (idx, w device lists);
    // runs on g's stream, copies on the streamer's own.
    void run(GpuContext& g, const ExpertBank& bank, const std::vector<Job>& jobs, const float* h,
             int64_t hidden, const int32_t* idx, const float* w, float* y,
             const ExpertActivation& act);

  private:
    struct Slot {
        cuda::DeviceBuffer<uint8_t> raw;
        cuda::DeviceBuffer<uint16_t> gate_up, down;
        cudaEvent_t copied = nullptr, used = nullptr;
        bool pending_use = false;
    };
    Slot slots_[2];
    cuda::Stream copy_;
    std::vector<void*> pinned_;
    uint64_t pinned_bytes_ = 0;
    Scratch xe_, g_, u_, ye_;
};

}  // namespace moe::hybrid
