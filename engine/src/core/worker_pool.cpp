#include "core/worker_pool.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include "core/cpu_info.h"
#include "core/error.h"
#include "core/trace.h"

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif
#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <intrin.h>
#endif

namespace moe {
namespace {

// Loop nesting of this thread: > 0 inside a parallel_for body (pool threads: always).
thread_local int t_depth = 0;
thread_local int t_worker = -1;

inline void cpu_relax() {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_ia32_pause();
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
    _mm_pause();
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
    __asm__ volatile("yield");
#endif
}

// A counter threads wait on for a change: spin on it for `spin`, then sleep in
// std::atomic::wait (a futex on Linux, WaitOnAddress on Windows: every sleeper wakes at once,
// no mutex hand-off between them). bump() makes the wake-up call only when someone sleeps,
// so a hot loop of short regions never enters the kernel.
class Signal {
  public:
    uint32_t value() const { return value_.load(std::memory_order_acquire); }

    void bump() {
        // seq_cst on both sides (this RMW, then the sleepers_ load; a sleeper's increment,
        // then its value_ load) guarantees that a sleeper either sees the new value or is
        // seen here and woken.
        value_.fetch_add(1, std::memory_order_seq_cst);
        if (sleepers_.load(std::memory_order_seq_cst) > 0) value_.notify_all();
    }

    // Returns the value once it differs from `seen`.
    uint32_t wait_change(uint32_t seen, std::chrono::microseconds spin) {
        if (spin.count() > 0) {
            const auto deadline = std::chrono::steady_clock::now() + spin;
            for (uint32_t i = 1;; ++i) {
                const uint32_t v = value_.load(std::memory_order_acquire);
                if (v != seen) return v;
                cpu_relax();
                if (i % 64 == 0 && std::chrono::steady_clock::now() >= deadline) break;
            }
        }
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        uint32_t v;
        while ((v = value_.load(std::memory_order_seq_cst)) == seen)
            value_.wait(seen, std::memory_order_acquire);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
        return v;
    }

  private:
    std::atomic<uint32_t> value_{0};
    std::atomic<int> sleepers_{0};
};

void set_thread_name(const std::string& name) {
#if defined(__linux__)
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());  // 15 chars + NUL max
#else
    (void)name;
#endif
}

// Best effort: a CPU outside the process's cpuset just leaves the thread unpinned.
void pin_to_cpu(int cpu) {
#if defined(__linux__)
    if (cpu < 0 || cpu >= CPU_SETSIZE) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
#else
    (void)cpu;
#endif
}

// Marks the calling thread as running a loop body as `worker` for the guard's lifetime.
class BodyScope {
  public:
    explicit BodyScope(int worker) : depth_(t_depth), worker_(t_worker) {
        t_depth = depth_ + 1;
        t_worker = worker;
    }
    ~BodyScope() {
        t_depth = depth_;
        t_worker = worker_;
    }
    BodyScope(const BodyScope&) = delete;
    BodyScope& operator=(const BodyScope&) = delete;

  private:
    int depth_, worker_;
};

}  // namespace

// ---- TaskQueue --------------------------------------------------------------------------

struct TaskQueue::Impl {
    std::function<void()> on_start;
    std::chrono::microseconds spin;
    std::mutex mutex;  // guards tasks, next_id, stopping, error, error_id
    std::deque<std::pair<uint64_t, std::function<void()>>> tasks;
    uint64_t next_id = 0;
    bool stopping = false;
    std::exception_ptr error;
    uint64_t error_id = 0;
    std::atomic<uint64_t> finished{0};  // id of the last finished task (tasks finish in order)
    Signal submitted, completed;
    std::thread thread;

    void run() {
        if (on_start) on_start();
        for (;;) {
            // Read the signal before looking at the queue so a submit in between still wakes us.
            const uint32_t seen = submitted.value();
            std::pair<uint64_t, std::function<void()>> task;
            {
                std::lock_guard<std::mutex> lock(mutex);
                if (tasks.empty()) {
                    if (stopping) return;
                } else {
                    task = std::move(tasks.front());
                    tasks.pop_front();
                }
            }
            if (!task.second) {
                submitted.wait_change(seen, spin);
                continue;
            }
            try {
                task.second();
            } catch (...) {
                std::lock_guard<std::mutex> lock(mutex);
                if (!error) {
                    error = std::current_exception();
                    error_id = task.first;
                }
            }
            task.second = nullptr;  // release captures before reporting completion
            finished.store(task.first, std::memory_order_release);
            completed.bump();
        }
    }
};

TaskQueue::TaskQueue(std::function<void()> on_start, std::chrono::microseconds spin)
    : impl_(std::make_unique<Impl>()) {
    impl_->on_start = std::move(on_start);
    impl_->spin = spin;
    impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

TaskQueue::~TaskQueue() {
    {
        std::lock_guard<std::mutex> lock(impl_->mutex);
        impl_->stopping = true;
    }
    impl_->submitted.bump();
    impl_->thread.join();
}

TaskHandle TaskQueue::submit(std::function<void()> task) {
    require(bool(task), "TaskQueue::submit: empty task");
    TaskHandle handle;
    {
        std::lock_guard<std::mutex> lock(impl_->mutex);
        handle.id = ++impl_->next_id;
        impl_->tasks.emplace_back(handle.id, std::move(task));
    }
    impl_->submitted.bump();
    return handle;
}

void TaskQueue::sync(TaskHandle task) {
    if (task.id == 0) return;
    require(std::this_thread::get_id() != impl_->thread.get_id(),
            "TaskQueue::sync called from one of its own tasks (it would wait for itself)");
    require(t_depth == 0,
            "TaskQueue::sync called inside a parallel_for body (the task may need that loop's "
            "workers)");
    for (;;) {
        const uint32_t seen = impl_->completed.value();
        if (impl_->finished.load(std::memory_order_acquire) >= task.id) break;
        impl_->completed.wait_change(seen, impl_->spin);
    }
    std::exception_ptr error;
    {
        std::lock_guard<std::mutex> lock(impl_->mutex);
        if (impl_->error && impl_->error_id <= task.id) std::swap(error, impl_->error);
    }
    if (error) std::rethrow_exception(error);
}

void TaskQueue::wait_all() {
    uint64_t last = 0;
    {
        std::lock_guard<std::mutex> lock(impl_->mutex);
        last = impl_->next_id;
    }
    sync(TaskHandle{last});
}

uint64_t TaskQueue::pending() const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    return impl_->next_id - impl_->finished.load(std::memory_order_acquire);
}

// ---- WorkerPool -------------------------------------------------------------------------

namespace {

// A worker's range of units [begin, end) packed in one word, so the owner (taking chunks from
// the front) and thieves (taking halves from the back) agree with a single CAS.
constexpr int64_t kMaxUnits = (int64_t(1) << 31) - 1;
// The owner takes 1/kOwnerChunk of what is left: few atomics while a range is long, single
// units (fine balance) near its end.
constexpr int64_t kOwnerChunk = 8;

inline uint64_t pack(int64_t begin, int64_t end) {
    return (uint64_t(begin) << 32) | uint64_t(end);
}
inline int64_t begin_of(uint64_t span) {
    return int64_t(span >> 32);
}
inline int64_t end_of(uint64_t span) {
    return int64_t(span & 0xFFFFFFFFu);
}

struct alignas(64) Range {  // one cache line each: no false sharing between owners
    std::atomic<uint64_t> span{0};
};

}  // namespace

struct WorkerPool::Impl {
    WorkerPoolOptions options;
    std::atomic<int64_t> spin_us{0};  // options.spin, changeable while the pool runs
    std::chrono::microseconds spin() const {
        return std::chrono::microseconds(spin_us.load(std::memory_order_relaxed));
    }
    std::atomic<int> threads{1};  // compute threads = worker ids
    std::vector<std::thread> pool_threads;
    std::unique_ptr<Range[]> ranges;

    std::mutex region_mutex;  // one loop (or resize) at a time; held from launch to finish
    Signal start, done;
    uint32_t done_seen = 0;
    std::atomic<int> remaining{0};
    std::atomic<bool> stopping{false};

    // The running loop (written before start.bump(), read by workers after it).
    const Body* fn = nullptr;
    int64_t n = 0, unit = 1;
    std::atomic<bool> abort{false};
    std::mutex error_mutex;
    std::exception_ptr error;

    std::mutex queue_mutex;
    std::unique_ptr<TaskQueue> queue;

    int first_pool_thread() const { return options.caller_joins ? 1 : 0; }

    void pin_as(int worker) const {
        if (options.pin && !options.cpus.empty())
            pin_to_cpu(options.cpus[size_t(worker) % options.cpus.size()]);
    }

    void run_chunk(int64_t b, int64_t e, int worker) {
        const int64_t begin = b * unit, end = std::min(n, e * unit);
        try {
            (*fn)(begin, end, worker);
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
            abort.store(true, std::memory_order_relaxed);
        }
    }

    void drain(int w) {
        std::atomic<uint64_t>& r = ranges[w].span;
        uint64_t cur = r.load(std::memory_order_acquire);
        while (!abort.load(std::memory_order_relaxed)) {
            const int64_t b = begin_of(cur), e = end_of(cur);
            if (b >= e) return;
            const int64_t take = (e - b + kOwnerChunk - 1) / kOwnerChunk;
            if (!r.compare_exchange_weak(cur, pack(b + take, e), std::memory_order_acq_rel))
                continue;
            run_chunk(b, b + take, w);
            cur = r.load(std::memory_order_acquire);
        }
    }

    // Moves the back half of range v into w's (empty) range. Only non-empty ranges are ever
    // CASed by others, so storing into an empty own range cannot race.
    bool steal(int v, int w) {
        std::atomic<uint64_t>& r = ranges[v].span;
        uint64_t cur = r.load(std::memory_order_acquire);
        for (;;) {
            const int64_t b = begin_of(cur), e = end_of(cur);
            if (b >= e) return false;
            const int64_t take = (e - b + 1) / 2;
            if (r.compare_exchange_weak(cur, pack(b, e - take), std::memory_order_acq_rel)) {
                ranges[w].span.store(pack(e - take, e), std::memory_order_release);
                return true;
            }
        }
    }

    void run_share(int w) {
        // One span per worker and loop (not per chunk): what the timeline needs to show how
        // evenly a loop spread, at a cost that does not grow with the number of chunks.
        trace::Scope span(trace::Stage::Worker, "parallel_for share");
        const int count = threads.load(std::memory_order_relaxed);
        drain(w);
        for (int k = 1; k < count; ++k) {
            const int v = (w + k) % count;
            while (!abort.load(std::memory_order_relaxed) && steal(v, w)) drain(w);
        }
    }

    void worker_main(int id, uint32_t seen) {
        set_thread_name(options.name + "-" + std::to_string(id));
        trace::set_thread_name(options.name + "-" + std::to_string(id));
        pin_as(id);
        t_depth = 1;  // a pool thread only ever runs loop bodies: nested loops run inline
        t_worker = id;
        for (;;) {
            seen = start.wait_change(seen, spin());
            if (stopping.load(std::memory_order_acquire)) return;
            run_share(id);
            if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) done.bump();
        }
    }

    // Callers hold region_mutex.
    void spawn(int count) {
        count = std::max(1, count);
        threads.store(count);
        ranges = std::make_unique<Range[]>(size_t(count));
        const uint32_t seen = start.value();
        for (int id = first_pool_thread(); id < count; ++id)
            pool_threads.emplace_back([this, id, seen] { worker_main(id, seen); });
    }

    void stop() {
        stopping.store(true, std::memory_order_release);
        start.bump();
        for (std::thread& t : pool_threads) t.join();
        pool_threads.clear();
        stopping.store(false, std::memory_order_release);
    }
};

WorkerPool::WorkerPool(int threads, bool pin)
    : WorkerPool([&] {
          WorkerPoolOptions o;
          o.threads = threads;
          o.pin = pin;
          return o;
      }()) {}

WorkerPool::WorkerPool(WorkerPoolOptions options) : impl_(std::make_unique<Impl>()) {
    if (options.cpus.empty()) {
        std::vector<int> all;
        for (const LogicalCpu& c : cpu_info().cpus) all.push_back(c.id);
        options.cpus = order_by_core(all);
    }
    impl_->options = std::move(options);
    impl_->spin_us = impl_->options.spin.count();
    std::lock_guard<std::mutex> lock(impl_->region_mutex);
    impl_->spawn(impl_->options.threads > 0 ? impl_->options.threads : default_thread_count());
}

WorkerPool::~WorkerPool() {
    impl_->queue.reset();  // its tasks may still run loops on this pool
    std::lock_guard<std::mutex> lock(impl_->region_mutex);
    impl_->stop();
}

int WorkerPool::size() const {
    return impl_->threads.load(std::memory_order_relaxed);
}

const WorkerPoolOptions& WorkerPool::options() const {
    return impl_->options;
}

std::chrono::microseconds WorkerPool::spin() const {
    return impl_->spin();
}

void WorkerPool::set_spin(std::chrono::microseconds spin) {
    impl_->spin_us.store(std::max<int64_t>(0, spin.count()), std::memory_order_relaxed);
}

int WorkerPool::current_worker() {
    return t_depth > 0 ? t_worker : -1;
}

void WorkerPool::resize(int threads) {
    require(t_depth == 0, "WorkerPool::resize called inside a parallel_for body");
    std::lock_guard<std::mutex> lock(impl_->region_mutex);
    impl_->stop();
    impl_->spawn(threads > 0 ? threads : default_thread_count());
}

void WorkerPool::launch(int64_t n, const Body& fn, int64_t grain) {
    Impl& s = *impl_;
    s.region_mutex.lock();  // not a unique_lock member: its owns-flag would race between callers
    grain = std::max<int64_t>(1, grain);
    int64_t units = (n + grain - 1) / grain;
    s.unit = grain;
    if (units > kMaxUnits) {  // keep unit indexes in 31 bits: coarser units, same alignment
        s.unit = grain * ((units + kMaxUnits - 1) / kMaxUnits);
        units = (n + s.unit - 1) / s.unit;
    }
    const int count = s.threads.load(std::memory_order_relaxed);
    const int64_t parts = std::min<int64_t>(count, units);
    for (int i = 0; i < count; ++i) {
        const int64_t b = i < parts ? units * i / parts : 0;
        const int64_t e = i < parts ? units * (i + 1) / parts : 0;
        s.ranges[i].span.store(pack(b, e), std::memory_order_relaxed);
    }
    s.fn = &fn;
    s.n = n;
    s.abort.store(false, std::memory_order_relaxed);
    s.error = nullptr;
    s.remaining.store(int(s.pool_threads.size()), std::memory_order_relaxed);
    s.done_seen = s.done.value();
    s.start.bump();  // publishes everything above to the workers
}

std::exception_ptr WorkerPool::finish() {
    Impl& s = *impl_;
    if (!s.pool_threads.empty()) {
        uint32_t v = s.done_seen;
        while (v == s.done_seen) v = s.done.wait_change(s.done_seen, s.spin());
    }
    s.fn = nullptr;
    std::exception_ptr error = std::exchange(s.error, nullptr);
    s.region_mutex.unlock();
    return error;
}

void WorkerPool::parallel_for(int64_t n, const Body& fn, int64_t grain) {
    if (n <= 0) return;
    if (t_depth > 0) {  // nested: the outer loop already uses every worker
        fn(0, n, t_worker);
        return;
    }
    Impl& s = *impl_;
    const bool caller_joins = s.options.caller_joins;
    if (n <= grain || (caller_joins && size() == 1)) {
        // Still under the region lock: worker id 0 must not run twice at once.
        std::lock_guard<std::mutex> lock(s.region_mutex);
        BodyScope scope(0);
        fn(0, n, 0);
        return;
    }
    launch(n, fn, grain);
    if (caller_joins) {
        BodyScope scope(0);
        s.run_share(0);  // catches fn's exceptions itself
    }
    if (std::exception_ptr error = finish()) std::rethrow_exception(error);
}

TaskHandle WorkerPool::submit(std::function<void()> task) {
    TaskQueue* queue = nullptr;
    {
        std::lock_guard<std::mutex> lock(impl_->queue_mutex);
        if (!impl_->queue) {
            // The queue thread leads the loops its tasks start, i.e. works as worker 0.
            const WorkerPoolOptions& o = impl_->options;
            auto on_start = [name = o.name + "-tasks", pin = o.pin && o.caller_joins,
                             cpu = o.cpus.empty() ? -1 : o.cpus[0]] {
                set_thread_name(name);
                if (pin) pin_to_cpu(cpu);
            };
            impl_->queue = std::make_unique<TaskQueue>(on_start, o.spin);
        }
        queue = impl_->queue.get();
    }
    return queue->submit(std::move(task));
}

void WorkerPool::sync(TaskHandle task) {
    TaskQueue* queue = nullptr;
    {
        std::lock_guard<std::mutex> lock(impl_->queue_mutex);
        queue = impl_->queue.get();
    }
    if (queue) queue->sync(task);
}

void WorkerPool::wait_all() {
    TaskQueue* queue = nullptr;
    {
        std::lock_guard<std::mutex> lock(impl_->queue_mutex);
        queue = impl_->queue.get();
    }
    if (queue) queue->wait_all();
}

WorkerPool& default_worker_pool() {
    // Leaked on purpose: joining at exit would race with other statics' destructors.
    static WorkerPool* pool = [] {
        WorkerPoolOptions o;
        const char* pin = std::getenv("MOE_PIN_THREADS");
        o.pin = pin && std::atoi(pin) > 0;
        // How long idle workers spin before sleeping (a hybrid decode step leaves the pool
        // idle while the GPU runs a layer's attention: longer spins avoid the wake-up).
        if (const char* spin = std::getenv("MOE_POOL_SPIN_US"); spin && std::atoi(spin) >= 0)
            o.spin = std::chrono::microseconds(std::atoi(spin));
        return new WorkerPool(std::move(o));
    }();
    return *pool;
}

}  // namespace moe
