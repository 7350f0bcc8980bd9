#pragma once
// A LoRA fine-tune running on its own thread (issue 10): the glue between a FinetuneSpec and
// train::LoraTrainer that the CLI and the app share. The dataset is checked before anything
// else (a bad file fails the job with its file and line, and no run is recorded); each step's
// metrics go to a callback and, with spec.store, to TrainingRunStore; pause holds the job
// between two steps; stop ends it after the current step with a checkpoint that a later job
// resumes from (spec.resume) to the same subsequent losses.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "api/finetune_spec.h"
#include "train/lora_trainer.h"

namespace moe {

enum class TrainingState { Idle, Preparing, Running, Paused, Finished, Stopped, Failed };
const char* training_state_name(TrainingState s);

struct TrainingPoint {
    train::StepMetrics metrics;
    int64_t ram_bytes = 0;  // this process's resident memory after the step
};

// Called on the job's thread; keep them short (the app posts them to its GUI thread).
struct TrainingJobEvents {
    std::function<void(const std::string& line)> log;
    std::function<void(const TrainingPoint& point)> step;
    // Every change of state; `message` is the error for Failed.
    std::function<void(TrainingState state, const std::string& message)> state;
};

class TrainingJob {
  public:
    // `resume_run`: the store's row of the run being continued (0: a new row).
    TrainingJob(FinetuneSpec spec, TrainingJobEvents events, int64_t resume_run = 0);
    ~TrainingJob();  // stops the job and waits for it
    TrainingJob(const TrainingJob&) = delete;
    TrainingJob& operator=(const TrainingJob&) = delete;

    void start();
    // Takes effect after the step in progress; resume() continues.
    void pause();
    void resume();
    // Ends after the step in progress, saving out/checkpoint-N (a paused job stops at once).
    void stop();
    // Blocks until the job ends; its final state.
    TrainingState wait();

    TrainingState state() const;
    std::string error() const;
    int64_t run_id() const;
    std::string last_checkpoint() const;  // the folder stop() (or save_every) saved last
    const FinetuneSpec& spec() const { return spec_; }

  private:
    void body();
    void set_state(TrainingState s, const std::string& message = {});
    void log(const std::string& line);
    // The step's hook: store, callback, then pause or stop. False ends the run.
    bool on_step(const train::StepMetrics& m, train::LoraTrainer& trainer);

    const FinetuneSpec spec_;
    const TrainingJobEvents events_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    TrainingState state_ = TrainingState::Idle;
    bool pause_ = false, stop_ = false;
    std::string error_, checkpoint_;
    int64_t run_id_ = 0;
    std::thread thread_;
};

// The folder of the highest out_dir/checkpoint-N that holds a trainer state ("" if none).
std::string latest_checkpoint(const std::string& out_dir);

}  // namespace moe
