#include "training_controller.h"

#include <QMetaObject>
#include <QPointer>
#include <cmath>

namespace moeui {

TrainingController::TrainingController(QObject* parent) : QObject(parent) {}

// The job joins its thread; its callbacks only post to this object (guarded by QPointer).
TrainingController::~TrainingController() = default;

void TrainingController::start(const moe::FinetuneSpec& spec, qint64 resume_run) {
    if (job_) {
        job_->stop();
        job_->wait();
    }
    QPointer<TrainingController> self(this);
    // Events come on the job's thread: queued to the GUI thread, dropped once we are gone.
    const auto post = [self](auto fn) {
        if (self) QMetaObject::invokeMethod(self.data(), fn, Qt::QueuedConnection);
    };
    moe::TrainingJobEvents ev;
    ev.log = [post, self](const std::string& line) {
        const QString s = QString::fromStdString(line);
        post([self, s] {
            if (self) emit self->logLine(s);
        });
    };
    ev.step = [post, self](const moe::TrainingPoint& p) {
        TrainingStep t;
        t.step = p.metrics.step;
        t.total = p.metrics.total_steps;
        t.loss = p.metrics.loss;
        t.has_eval = !std::isnan(p.metrics.eval_loss);
        t.eval_loss = t.has_eval ? p.metrics.eval_loss : 0.0;
        t.lr = p.metrics.lr;
        t.grad_norm = p.metrics.grad_norm;
        t.tokens_per_s = p.metrics.tokens_per_s;
        t.step_seconds = p.metrics.step_seconds;
        t.ram_bytes = p.ram_bytes;
        post([self, t] {
            if (self) emit self->stepDone(t);
        });
    };
    ev.state = [post, self](moe::TrainingState s, const std::string& message) {
        const QString name = moe::training_state_name(s), m = QString::fromStdString(message);
        post([self, name, m] {
            if (self) emit self->stateChanged(name, m);
        });
    };
    job_ = std::make_unique<moe::TrainingJob>(spec, std::move(ev), resume_run);
    job_->start();
}

void TrainingController::pause() {
    if (job_) job_->pause();
}

void TrainingController::resume() {
    if (job_) job_->resume();
}

void TrainingController::stop() {
    if (job_) job_->stop();
}

bool TrainingController::active() const {
    if (!job_) return false;
    const moe::TrainingState s = job_->state();
    return s == moe::TrainingState::Preparing || s == moe::TrainingState::Running ||
           s == moe::TrainingState::Paused;
}

qint64 TrainingController::runId() const {
    return job_ ? job_->run_id() : 0;
}

}  // namespace moeui
