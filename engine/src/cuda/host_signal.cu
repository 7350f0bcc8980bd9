// host_signal.h.
#include "cuda/host_signal.h"

#include <atomic>
#include <chrono>
#include <string>

#include "cuda/cuda_check.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace moe::cuda {

namespace {

// Counters compare with wrap-around (int32_t(a - b) >= 0).
__global__ void wait_flag_kernel(const volatile uint32_t* flag, uint32_t n) {
    while (int32_t(*flag - n) < 0) __nanosleep(200);  // a poll crosses PCIe: keep it gentle
}

__global__ void write_flag_kernel(volatile uint32_t* flag, uint32_t n) {
    __threadfence_system();
    *flag = n;
}

void cpu_relax() {
#if defined(__x86_64__)
    _mm_pause();
#endif
}

}  // namespace

HostSignal::HostSignal() {
    void* p = nullptr;
    MOE_CUDA(cudaHostAlloc(&p, 64, cudaHostAllocMapped | cudaHostAllocPortable));
    flags_ = static_cast<volatile uint32_t*>(p);
    flags_[0] = 0;
    flags_[1] = 0;
    void* d = nullptr;
    MOE_CUDA(cudaHostGetDevicePointer(&d, p, 0));
    device_flags_ = static_cast<uint32_t*>(d);
}

HostSignal::~HostSignal() {
    if (flags_) cudaFreeHost(const_cast<uint32_t*>(flags_));
}

void HostSignal::gpu_reached(cudaStream_t s, uint32_t n) {
    write_flag_kernel<<<1, 1, 0, s>>>(device_flags_, n);
    MOE_CUDA_LAUNCH();
}

void HostSignal::gpu_wait_done(cudaStream_t s, uint32_t n) {
    wait_flag_kernel<<<1, 1, 0, s>>>(device_flags_ + 1, n);
    MOE_CUDA_LAUNCH();
}

void HostSignal::host_wait_reached(cudaStream_t s, uint32_t n) const {
    const auto reached = [&] { return int32_t(flags_[0] - n) >= 0; };
    for (int i = 0; i < 4096; ++i) {
        if (reached()) {
            std::atomic_thread_fence(std::memory_order_acquire);
            return;
        }
        cpu_relax();
    }
    // Longer waits: check now and then that the stream did not fail (it would never arrive).
    auto next_check = std::chrono::steady_clock::now();
    while (!reached()) {
        cpu_relax();
        const auto now = std::chrono::steady_clock::now();
        if (now < next_check) continue;
        next_check = now + std::chrono::milliseconds(1);
        const cudaError_t e = cudaStreamQuery(s);
        if (e != cudaSuccess && e != cudaErrorNotReady)
            fail(e, "cudaStreamQuery (waiting for the stream)", __FILE__, __LINE__);
        if (e == cudaSuccess && !reached())
            throw Error("the GPU stream finished without reaching host step " + std::to_string(n) +
                        " (an internal ordering error)");
    }
    std::atomic_thread_fence(std::memory_order_acquire);
}

void HostSignal::host_done(uint32_t n) {
    std::atomic_thread_fence(std::memory_order_release);
    flags_[1] = n;
}

void HostSignal::reset() {
    flags_[0] = 0;
    flags_[1] = 0;
    std::atomic_thread_fence(std::memory_order_seq_cst);
}

}  // namespace moe::cuda
