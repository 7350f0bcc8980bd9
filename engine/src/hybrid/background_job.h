#pragma once
// One job at a time on a thread of its own: start() hands it over and returns at once, wait()
// blocks until it is done and rethrows what it threw. The hybrid decoder runs a layer's CPU
// experts this way, so that the thread which queues GPU work (or a CUDA host-function node,
// which must return quickly and may not throw) is never the one computing them.
//
// Both sides spin only a few microseconds before sleeping: the job itself (the expert
// operator) keeps every core busy, and a spinning thread beside it would take one away.
#include <atomic>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace moe {

class BackgroundJob {
  public:
    BackgroundJob();
    ~BackgroundJob();
    BackgroundJob(const BackgroundJob&) = delete;
    BackgroundJob& operator=(const BackgroundJob&) = delete;

    // Requires that no job is running (the previous one was waited for).
    void start(std::function<void()> job);
    // Waits for the job started last (returns at once when there is none); rethrows its error
    // unless `rethrow` is false, in which case the error is kept for take_error().
    void wait(bool rethrow = true);
    // The error of a job waited for without rethrowing (null if none), cleared.
    std::exception_ptr take_error();

  private:
    void loop();

    std::function<void()> job_;
    std::exception_ptr error_;
    std::atomic<int> state_{0};  // 0 idle, 1 started, 2 done
    std::atomic<bool> stop_{false};
    std::mutex m_;
    std::condition_variable cv_;
    std::thread thread_;
};

}  // namespace moe
