#include "hybrid/background_job.h"

#include <chrono>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace moe {

namespace {

void relax() {
#if defined(__x86_64__)
    _mm_pause();
#endif
}

// Spins until `done()` or about `spin_us` microseconds passed; true when done.
template <class F>
bool spin_until(F done, int spin_us) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us);
    for (int i = 0;; ++i) {
        if (done()) return true;
        relax();
        if ((i & 255) == 0 && std::chrono::steady_clock::now() > until) return false;
    }
}

// Short: a spinning waiter takes a core from the expert operator's pool, which uses them all.
constexpr int kSpinMicroseconds = 10;

}  // namespace

BackgroundJob::BackgroundJob() : thread_([this] { loop(); }) {}

BackgroundJob::~BackgroundJob() {
    {
        std::lock_guard lock(m_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void BackgroundJob::start(std::function<void()> job) {
    {
        std::lock_guard lock(m_);
        job_ = std::move(job);
        state_.store(1, std::memory_order_release);
    }
    cv_.notify_all();
}

void BackgroundJob::wait(bool rethrow) {
    if (state_.load(std::memory_order_acquire) == 0) return;
    if (!spin_until([&] { return state_.load(std::memory_order_acquire) == 2; },
                    kSpinMicroseconds)) {
        std::unique_lock lock(m_);
        cv_.wait(lock, [&] { return state_.load(std::memory_order_acquire) == 2; });
    }
    state_.store(0, std::memory_order_release);
    if (rethrow && error_) std::rethrow_exception(take_error());
}

std::exception_ptr BackgroundJob::take_error() {
    std::exception_ptr e = error_;
    error_ = nullptr;
    return e;
}

void BackgroundJob::loop() {
    for (;;) {
        if (!spin_until([&] { return state_.load(std::memory_order_acquire) == 1 || stop_; },
                        kSpinMicroseconds)) {
            std::unique_lock lock(m_);
            cv_.wait(lock, [&] { return state_.load(std::memory_order_acquire) == 1 || stop_; });
        }
        if (stop_) return;
        std::function<void()> job;
        {
            std::lock_guard lock(m_);
            job = std::move(job_);
        }
        try {
            job();
        } catch (...) {
            if (!error_) error_ = std::current_exception();
        }
        {
            std::lock_guard lock(m_);
            state_.store(2, std::memory_order_release);
        }
        cv_.notify_all();
    }
}

}  // namespace moe
