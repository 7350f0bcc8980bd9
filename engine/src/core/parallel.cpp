#include "core/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace moe {
namespace {

thread_local bool t_inside_region = false;

class Pool {
  public:
    explicit Pool(int n) { resize(n); }
    ~Pool() { stop(); }

    int size() const { return int(workers_.size()) + 1; }

    void resize(int n) {
        stop();
        stopping_ = false;
        for (int i = 1; i < std::max(1, n); ++i) workers_.emplace_back([this] { work(); });
    }

    void run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
        std::lock_guard<std::mutex> run_lock(run_mutex_);  // one parallel region at a time
        const int64_t chunks_wanted = int64_t(size()) * 4;
        const int64_t chunk = std::max<int64_t>(grain, (n + chunks_wanted - 1) / chunks_wanted);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            fn_ = &fn;
            n_ = n;
            chunk_ = chunk;
            next_.store(0);
            error_ = nullptr;
            active_ = int(workers_.size());
            ++generation_;
        }
        wake_.notify_all();
        drain();
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [this] { return active_ == 0; });
        fn_ = nullptr;
        if (error_) std::rethrow_exception(error_);
    }

  private:
    void drain() {
        for (;;) {
            const int64_t begin = next_.fetch_add(chunk_);
            if (begin >= n_) return;
            try {
                t_inside_region = true;
                (*fn_)(begin, std::min(n_, begin + chunk_));
                t_inside_region = false;
            } catch (...) {
                t_inside_region = false;
                std::lock_guard<std::mutex> lock(mutex_);
                if (!error_) error_ = std::current_exception();
                next_.store(n_);
            }
        }
    }

    void work() {
        uint64_t seen = 0;
        for (;;) {
            {
                std::unique_lock<std::mutex> lock(mutex_);
                wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
                if (stopping_) return;
                seen = generation_;
            }
            drain();
            std::lock_guard<std::mutex> lock(mutex_);
            if (--active_ == 0) done_.notify_one();
        }
    }

    void stop() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        for (auto& t : workers_) t.join();
        workers_.clear();
    }

    std::vector<std::thread> workers_;
    std::mutex run_mutex_;
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
    int64_t n_ = 0, chunk_ = 1;
    std::atomic<int64_t> next_{0};
    std::exception_ptr error_;
    int active_ = 0;
    uint64_t generation_ = 0;
    bool stopping_ = false;
};

int default_threads() {
    if (const char* env = std::getenv("MOE_THREADS")) {
        const int n = std::atoi(env);
        if (n > 0) return n;
    }
    return std::max(1u, std::thread::hardware_concurrency());
}

Pool& pool() {
    static Pool p(default_threads());
    return p;
}

}  // namespace

int parallel_threads() {
    return pool().size();
}

void set_parallel_threads(int n) {
    pool().resize(std::max(1, n));
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    // Nested regions run serially on the calling worker rather than deadlocking the pool.
    if (n <= grain || t_inside_region || parallel_threads() == 1) {
        fn(0, n);
        return;
    }
    pool().run(n, grain, fn);
}

}  // namespace moe
