#pragma once
// The CPU side's thread pool: a fixed set of (optionally pinned) worker threads that run
// data-parallel loops with work stealing, plus a FIFO task queue for work submitted
// asynchronously (the GPU side hands a layer's CPU experts to it and syncs before combining).
//
// Loops: parallel_for splits [0, n) into one contiguous range per worker; each worker eats
// its own range front to back in shrinking chunks, and once it is empty steals half of what
// is left in another worker's range. A decode step whose experts differ in cost (or whose
// workers are slowed by the OS) still finishes together, and each worker mostly touches
// contiguous memory.
//
// Wake-up: idle workers spin on a generation counter for a short, bounded time (so the many
// small loops of one decode step start within microseconds), then sleep on it with
// std::atomic::wait, a futex on Linux (so an idle pool costs nothing).
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace moe {

// Identifies a submitted task; sync() on it waits for that task and every earlier one.
struct TaskHandle {
    uint64_t id = 0;  // 0: no task (sync returns at once)
};

// Runs submitted tasks one at a time, in submission order, on a thread of its own. A task
// may use a WorkerPool's parallel_for at full width (the queue thread leads the loop).
class TaskQueue {
  public:
    // `on_start` runs first on the queue thread (e.g. to pin it).
    explicit TaskQueue(std::function<void()> on_start = {},
                       std::chrono::microseconds spin = std::chrono::microseconds(50));
    // Runs every task still queued, then joins. Exceptions of those tasks are dropped.
    ~TaskQueue();
    TaskQueue(const TaskQueue&) = delete;
    TaskQueue& operator=(const TaskQueue&) = delete;

    TaskHandle submit(std::function<void()> task);
    // Waits until `task` (and all tasks submitted before it) finished. If any of those threw,
    // rethrows the first such exception not yet rethrown; later tasks still ran. Throws
    // moe::Error when called from a task of this queue or from inside a parallel_for body
    // (either would wait for itself).
    void sync(TaskHandle task);
    // sync() on the last task submitted so far.
    void wait_all();
    // Tasks submitted but not finished.
    uint64_t pending() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

struct WorkerPoolOptions {
    int threads = 0;   // compute threads (worker ids 0 .. threads-1); 0: default_thread_count()
    bool pin = false;  // pin worker i to cpus[i % cpus.size()] (Linux; ignored elsewhere)
    std::vector<int> cpus;  // empty: all of this process's CPUs, order_by_core()
    // true: the thread calling parallel_for works as worker 0 and the pool starts threads-1
    // threads (no core idles while the caller waits). false: the pool starts `threads`
    // threads and the caller only waits; NumaPools needs this to run several pools at once.
    bool caller_joins = true;
    // How long an idle worker (and a waiting caller) spins before sleeping.
    std::chrono::microseconds spin = std::chrono::microseconds(100);
    std::string name = "moe-worker";  // thread name prefix (visible in top/perf/gdb)
};

class WorkerPool {
  public:
    // (worker-local begin, end, worker id in 0 .. size()-1)
    using Body = std::function<void(int64_t begin, int64_t end, int worker)>;

    explicit WorkerPool(int threads = 0, bool pin = false);
    explicit WorkerPool(WorkerPoolOptions options);
    // Finishes the queued tasks (they may use this pool), then joins every thread.
    ~WorkerPool();
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    // Number of compute threads, i.e. of distinct worker ids.
    int size() const;
    const WorkerPoolOptions& options() const;

    // Calls fn(begin, end, worker) on disjoint chunks covering [0, n), and returns when all
    // are done. Chunk boundaries are multiples of `grain` (the last chunk ends at n), so
    // `grain` can be a kernel's row block. At most one call to fn runs per worker id at a
    // time, so fn may index per-worker scratch buffers by `worker`. The first exception
    // thrown by fn is rethrown here after the others stopped (chunks not yet started are
    // skipped). Runs fn(0, n, worker) inline on the calling thread when n <= grain, when the
    // pool has one thread, or when called from inside any pool's parallel_for body (nested
    // loops never deadlock; `worker` is then the caller's own id). Concurrent calls from
    // several threads are run one after the other.
    void parallel_for(int64_t n, const Body& fn, int64_t grain = 1);

    // Task queue of this pool: tasks run on one extra thread (started on first submit, pinned
    // like worker 0), in order; see TaskQueue.
    TaskHandle submit(std::function<void()> task);
    void sync(TaskHandle task);
    void wait_all();

    // How long idle workers spin before sleeping (options().spin at start); changeable at any
    // time (the hybrid decoder lengthens it: its pool idles while the GPU runs a layer).
    std::chrono::microseconds spin() const;
    void set_spin(std::chrono::microseconds spin);

    // Changes the number of compute threads (0: default). Waits for a running loop.
    void resize(int threads);

    // The worker id of the calling thread inside a parallel_for body (of any pool), else -1.
    static int current_worker();

  private:
    friend class NumaPools;
    // Starts a loop without joining it and without taking part; finish() waits for it and
    // returns its first exception. Both on the same thread, launch/finish strictly paired.
    void launch(int64_t n, const Body& fn, int64_t grain);
    std::exception_ptr finish();

    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The process-wide pool behind parallel_for()/parallel_threads() in core/parallel.h:
// default_thread_count() threads, pinned when MOE_PIN_THREADS=1. Lives until exit.
WorkerPool& default_worker_pool();

}  // namespace moe
