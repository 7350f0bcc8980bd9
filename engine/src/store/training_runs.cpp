#include "store/training_runs.h"

#include <chrono>

#include "store/schema.h"

namespace moe {

namespace {

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

TrainingRunStore::TrainingRunStore(const std::string& path) : db_(path) {
    migrate(db_);
}

int64_t TrainingRunStore::start_run(const std::string& model, const std::string& dataset,
                                    const std::string& out_dir, const std::string& config_json) {
    const int64_t t = now_ms();
    Statement(db_,
              "INSERT INTO training_runs (model, dataset, out_dir, config, created_ms, updated_ms) "
              "VALUES (?, ?, ?, ?, ?, ?)")
        .bind(1, model)
        .bind(2, dataset)
        .bind(3, out_dir)
        .bind(4, config_json)
        .bind(5, t)
        .bind(6, t)
        .run();
    return db_.last_insert_id();
}

void TrainingRunStore::add_metrics(int64_t run, const TrainingMetricsRow& m) {
    Statement s(db_,
                "INSERT OR REPLACE INTO training_metrics (run_id, step, loss, eval_loss, lr, "
                "grad_norm, tokens_per_s, step_seconds, ram_bytes, vram_bytes, created_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    s.bind(1, run).bind(2, m.step).bind(3, m.loss);
    if (m.eval_loss) {
        s.bind(4, *m.eval_loss);
    } else {
        s.bind_null(4);
    }
    s.bind(5, m.lr).bind(6, m.grad_norm).bind(7, m.tokens_per_s).bind(8, m.step_seconds);
    s.bind(9, m.ram_bytes).bind(10, m.vram_bytes).bind(11, now_ms()).run();
    Statement(db_, "UPDATE training_runs SET updated_ms = ? WHERE id = ?")
        .bind(1, now_ms())
        .bind(2, run)
        .run();
}

void TrainingRunStore::reopen_run(int64_t run) {
    finish_run(run, "running");
}

void TrainingRunStore::finish_run(int64_t run, const std::string& status) {
    Statement(db_, "UPDATE training_runs SET status = ?, updated_ms = ? WHERE id = ?")
        .bind(1, status)
        .bind(2, now_ms())
        .bind(3, run)
        .run();
}

void TrainingRunStore::delete_run(int64_t run) {
    // training_metrics rows go with it (ON DELETE CASCADE).
    Statement(db_, "DELETE FROM training_runs WHERE id = ?").bind(1, run).run();
}

std::vector<TrainingRun> TrainingRunStore::runs() {
    std::vector<TrainingRun> out;
    Statement s(db_,
                "SELECT id, model, dataset, out_dir, config, status, created_ms, updated_ms FROM "
                "training_runs ORDER BY id DESC");
    while (s.step())
        out.push_back({s.int64(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5),
                       s.int64(6), s.int64(7)});
    return out;
}

std::vector<TrainingMetricsRow> TrainingRunStore::metrics(int64_t run) {
    std::vector<TrainingMetricsRow> out;
    Statement s(db_,
                "SELECT step, loss, eval_loss, lr, grad_norm, tokens_per_s, step_seconds, "
                "ram_bytes, vram_bytes FROM training_metrics WHERE run_id = ? ORDER BY step");
    s.bind(1, run);
    while (s.step()) {
        TrainingMetricsRow m;
        m.step = s.int64(0);
        m.loss = s.real(1);
        if (!s.is_null(2)) m.eval_loss = s.real(2);
        m.lr = s.real(3);
        m.grad_norm = s.real(4);
        m.tokens_per_s = s.real(5);
        m.step_seconds = s.real(6);
        m.ram_bytes = s.optional_int64(7);
        m.vram_bytes = s.optional_int64(8);
        out.push_back(m);
    }
    return out;
}

}  // namespace moe
