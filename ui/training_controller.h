#pragma once
// The app's side of a fine-tune: owns a moe::TrainingJob (its own thread) and turns its
// callbacks into Qt signals delivered on the GUI thread, as EngineHost does for the engine.
#include <QObject>
#include <QString>
#include <memory>

#include "api/training_job.h"

namespace moeui {

struct TrainingStep {
    qint64 step = 0, total = 0;
    double loss = 0, eval_loss = 0, lr = 0, grad_norm = 0, tokens_per_s = 0, step_seconds = 0;
    bool has_eval = false;
    qint64 ram_bytes = 0;
};

class TrainingController : public QObject {
    Q_OBJECT

  public:
    explicit TrainingController(QObject* parent = nullptr);
    ~TrainingController() override;

    // Starts `spec` (a running job must have ended). `resume_run`: the store row it continues.
    void start(const moe::FinetuneSpec& spec, qint64 resume_run = 0);
    void pause();
    void resume();
    void stop();
    bool active() const;
    qint64 runId() const;

  signals:
    void stepDone(const moeui::TrainingStep& step);
    void logLine(const QString& line);
    // state: training_state_name(); message: the error when "failed".
    void stateChanged(const QString& state, const QString& message);

  private:
    std::unique_ptr<moe::TrainingJob> job_;
};

}  // namespace moeui
