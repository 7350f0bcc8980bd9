#pragma once
// Fine-tuning runs in MoE Studio's database (schema v3): one row per run (model, dataset, output
// folder, configuration as JSON, status) and one per optimizer step with its metrics, each
// committed as it arrives, so that a monitor (the app, another process) follows a run live and
// a crash loses nothing that was reported.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/sqlite_db.h"

namespace moe {

struct TrainingRun {
    int64_t id = 0;
    std::string model, dataset, out_dir, config, status;
    int64_t created_ms = 0, updated_ms = 0;
};

struct TrainingMetricsRow {
    int64_t step = 0;
    double loss = 0, lr = 0, grad_norm = 0, tokens_per_s = 0, step_seconds = 0;
    std::optional<double> eval_loss;
    std::optional<int64_t> ram_bytes, vram_bytes;
};

class TrainingRunStore {
  public:
    // Opens (creating and migrating) the database at `path` (WAL: shared with the
    // conversation store and other processes).
    explicit TrainingRunStore(const std::string& path);

    int64_t start_run(const std::string& model, const std::string& dataset,
                      const std::string& out_dir, const std::string& config_json);
    // A stopped, failed or interrupted run continued (from its last checkpoint): running again.
    void reopen_run(int64_t run);
    // One step's metrics (a step run again after a resume replaces its row).
    void add_metrics(int64_t run, const TrainingMetricsRow& m);
    // status: finished, stopped or failed.
    void finish_run(int64_t run, const std::string& status);
    // The run and its metrics (its files are the caller's to remove).
    void delete_run(int64_t run);
    std::vector<TrainingRun> runs();  // newest first
    std::vector<TrainingMetricsRow> metrics(int64_t run);

  private:
    SqliteDb db_;
};

}  // namespace moe
