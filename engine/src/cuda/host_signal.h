#pragma once
// Two counters in mapped page-locked host memory through which a stream and the host thread
// hand work to each other without a synchronisation or a host-function node (CUDA builds only).
//
// A decode step recorded into a CUDA graph holds, where it needs host work (routing, the CPU
// experts), "write reached = n" and "wait until done >= n", both one-thread kernels on the
// counters. The host launches the graph, spins until the stream reached n, does its part, and
// writes done = n: the GPU goes on within microseconds. (The driver's stream memory operations,
// cuStreamWriteValue32 / cuStreamWaitValue32, do the same; on the H200 machine of
// docs/benchmarks.md the kernels were faster inside graphs: 341 vs 330 tok/s.)
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moe::cuda {

class HostSignal {
  public:
    HostSignal();
    ~HostSignal();
    HostSignal(const HostSignal&) = delete;
    HostSignal& operator=(const HostSignal&) = delete;

    // Queued on `s`: once everything before it ran, reached = n (after a system-wide fence, so
    // the host sees what was copied to it before).
    void gpu_reached(cudaStream_t s, uint32_t n);
    // Queued on `s`: what follows waits until the host wrote done >= n.
    void gpu_wait_done(cudaStream_t s, uint32_t n);
    // Spins until the stream reached n; throws moe::Error when the stream failed meanwhile.
    void host_wait_reached(cudaStream_t s, uint32_t n) const;
    // Lets the stream pass every wait up to n.
    void host_done(uint32_t n);
    // Both counters back to 0 (only while no stream waits on them).
    void reset();

  private:
    volatile uint32_t* flags_ = nullptr;  // [0] reached (GPU writes), [1] done (host writes)
    uint32_t* device_flags_ = nullptr;
};

}  // namespace moe::cuda
