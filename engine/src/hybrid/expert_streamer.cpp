// expert_streamer.h (CUDA builds only).
#if defined(MOE_HAVE_CUDA)

#include "hybrid/expert_streamer.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/error.h"
#include "cuda/basic_kernels.h"
#include "cuda/decoder_kernels.h"
#include "cuda/packed_dequant.h"

namespace moe::hybrid {

void ExpertCostModel::note_cpu(double seconds, int64_t assignments) {
    if (assignments <= 0 || seconds <= 0) return;
    const double v = seconds / double(assignments);
    cpu_s_per_assignment = (1 - kNewest) * cpu_s_per_assignment + kNewest * v;
}

void ExpertCostModel::note_stream(double seconds, uint64_t bytes) {
    if (bytes == 0 || seconds <= 0) return;
    const double v = double(bytes) / seconds;
    h2d_bytes_per_s = h2d_bytes_per_s > 0 ? (1 - kNewest) * h2d_bytes_per_s + kNewest * v : v;
}

namespace {

size_t round64(size_t n) {
    return (n + 63) / 64 * 64;
}

size_t staged_bytes(const PackedMatrix& m) {
    size_t n = 0;
    cuda::for_each_packed_array(m, [&](const void*, size_t b) { n += round64(b); });
    return n;
}

// Copies `m`'s arrays to raw + offset (advanced) and returns the device view of them.
cuda::PackedView stage(const PackedMatrix& m, uint8_t* raw, size_t& offset, cudaStream_t s) {
    return cuda::packed_view(m, [&](const void* src, size_t b) -> const uint8_t* {
        MOE_CUDA(cudaMemcpyAsync(raw + offset, src, b, cudaMemcpyHostToDevice, s));
        const uint8_t* at = raw + offset;
        offset += round64(b);
        return at;
    });
}

template <class T>
T* grow(cuda::DeviceBuffer<T>& b, size_t n) {
    if (b.size() < n) b = cuda::DeviceBuffer<T>(n);
    return b.data();
}

}  // namespace

ExpertStreamer::ExpertStreamer() {
    for (Slot& s : slots_) {
        MOE_CUDA(cudaEventCreateWithFlags(&s.copied, cudaEventDisableTiming));
        MOE_CUDA(cudaEventCreateWithFlags(&s.used, cudaEventDisableTiming));
    }
}

ExpertStreamer::~ExpertStreamer() {
    for (void* p : pinned_) cudaHostUnregister(p);
    (void)cudaGetLastError();
    for (Slot& s : slots_) {
        if (s.copied) cudaEventDestroy(s.copied);
        if (s.used) cudaEventDestroy(s.used);
    }
}

bool ExpertStreamer::streamable(const ExpertBank& bank) {
    for (const BankExpert& e : bank.experts) {
        if (e.gguf_in || e.gguf_out || e.parts.size() != 1 || !e.gate_bias.empty() ||
            !e.up_bias.empty() || !e.down_bias.empty())
            return false;
    }
    return !bank.experts.empty();
}

void ExpertStreamer::pin(const ExpertBank& bank) {
    for (const BankExpert& e : bank.experts) {
        for (const ExpertPart& part : e.parts) {
            for (const PackedMatrix* m : {&part.gate_up, &part.down}) {
                cuda::for_each_packed_array(*m, [&](const void* p, size_t n) {
                    if (n < (size_t(64) << 10)) return;  // small arrays share pages: copy them
                    void* q = const_cast<void*>(p);
                    if (cudaHostRegister(q, n, cudaHostRegisterPortable) == cudaSuccess) {
                        pinned_.push_back(q);
                        pinned_bytes_ += n;
                    } else {
                        (void)cudaGetLastError();  // stays pageable
                    }
                });
            }
        }
    }
}

uint64_t ExpertStreamer::stream_bytes(const ExpertBank& bank, int64_t expert) {
    const ExpertPart& p = bank.experts[size_t(expert)].parts.front();
    return staged_bytes(p.gate_up) + staged_bytes(p.down);
}

double ExpertStreamer::probe_bandwidth() {
    // From page-locked memory when the banks are (mostly) locked, else from ordinary memory.
    constexpr size_t kBytes = size_t(64) << 20;
    std::vector<uint8_t> pageable;
    cuda::PinnedBuffer<uint8_t> locked;
    uint8_t* host = nullptr;
    if (pinned_bytes_ > 0) {
        locked = cuda::PinnedBuffer<uint8_t>(kBytes);
        host = locked.data();
        std::memset(host, 1, kBytes);
    } else {
        pageable.assign(kBytes, 1);
        host = pageable.data();
    }
    cuda::DeviceBuffer<uint8_t> dev(kBytes);
    MOE_CUDA(cudaMemcpy(dev.data(), host, kBytes, cudaMemcpyHostToDevice));  // warm-up
    const auto t0 = std::chrono::steady_clock::now();
    MOE_CUDA(cudaMemcpy(dev.data(), host, kBytes, cudaMemcpyHostToDevice));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return double(kBytes) / std::max(s, 1e-9);
}

void ExpertStreamer::run(GpuContext& g, const ExpertBank& bank, const std::vector<Job>& jobs,
                         const float* h, int64_t hidden, const int32_t* idx, const float* w,
                         float* y, const ExpertActivation& act) {
    const cudaStream_t cs = copy_.get(), s = g.stream();
    const int64_t inter = bank.inter;
    // Every buffer sized before the first job: growing one inside the loop would free memory
    // that kernels queued for an earlier job still read.
    int64_t most = 0;
    size_t need = 0;
    for (const Job& job : jobs) {
        most = std::max(most, job.count);
        const ExpertPart& part = bank.experts[size_t(job.expert)].parts.front();
        need = std::max(need, staged_bytes(part.gate_up) + staged_bytes(part.down));
    }
    MOE_CUDA(cudaStreamSynchronize(cs));
    MOE_CUDA(cudaStreamSynchronize(s));
    for (Slot& slot : slots_) {
        grow(slot.raw, need);
        grow(slot.gate_up, size_t(2 * inter * hidden));
        grow(slot.down, size_t(hidden * inter));
    }
    xe_.get(most * hidden);
    g_.get(most * inter);
    u_.get(most * inter);
    ye_.get(most * hidden);
    g.reserve_gemm_input(most * std::max(hidden, inter));
    int which = 0;
    for (const Job& job : jobs) {
        Slot& slot = slots_[which];
        which ^= 1;
        const ExpertPart& part = bank.experts[size_t(job.expert)].parts.front();
        // The copy may overwrite the slot only once the GEMMs that read it finished.
        if (slot.pending_use) MOE_CUDA(cudaStreamWaitEvent(cs, slot.used, 0));
        size_t offset = 0;
        const cuda::PackedView gu = stage(part.gate_up, slot.raw.data(), offset, cs);
        const cuda::PackedView dn = stage(part.down, slot.raw.data(), offset, cs);
        MOE_CUDA(cudaEventRecord(slot.copied, cs));

        MOE_CUDA(cudaStreamWaitEvent(s, slot.copied, 0));
        uint16_t* wgu = slot.gate_up.data();
        uint16_t* wdn = slot.down.data();
        cuda::dequantize_packed(gu, wgu, s);
        cuda::dequantize_packed(dn, wdn, s);
        const int64_t n = job.count;
        float* xe = xe_.get(n * hidden);
        float* gv = g_.get(n * inter);
        float* uv = u_.get(n * inter);
        float* ye = ye_.get(n * hidden);
        cuda::gather_rows(h, idx + job.first, n, hidden, xe, s);
        g.linear_bf16(wgu, inter, hidden, xe, n, gv);
        g.linear_bf16(wgu + inter * hidden, inter, hidden, xe, n, uv);
        cuda::glu(gv, uv, n * inter, act.kind == ExpertActivation::Kind::ClampedSwiGlu, act.alpha,
                  act.limit, gv, s);
        g.linear_bf16(wdn, hidden, inter, gv, n, ye);
        cuda::scatter_add_rows(y, ye, idx + job.first, w + job.first, n, hidden, s);
        MOE_CUDA(cudaEventRecord(slot.used, s));
        slot.pending_use = true;
    }
}

}  // namespace moe::hybrid

#endif  // MOE_HAVE_CUDA
