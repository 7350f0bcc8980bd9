#pragma once
// The live view of a fine-tune (issue 10): charts of loss and eval loss, learning rate, grad
// norm, tokens/s and RAM (QtCharts), progress with elapsed time and ETA, the job's log, and
// Pause / Resume / Stop. Below, the runs recorded in the store, one of which (stopped, failed
// or interrupted) can be resumed from its last checkpoint.
#include <QElapsedTimer>
#include <QWidget>
#include <functional>
#include <string>

#include "api/finetune_spec.h"
#include "training_controller.h"

class QLabel;
class QLineSeries;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QTableWidget;
class QChart;

namespace moeui {

class TrainingMonitor : public QWidget {
    Q_OBJECT

  public:
    // `store_path`: the database the runs are recorded in ("" = no history).
    TrainingMonitor(TrainingController* controller, const QString& store_path,
                    QWidget* parent = nullptr);

    // Clears the charts and starts `spec` (resume_run: the store row it continues).
    void start(const moe::FinetuneSpec& spec, const QString& title, qint64 resume_run = 0);
    int points(const QString& series) const;  // loss, eval, lr, grad, tokens, ram
    QString state() const { return state_; }
    QPushButton* pauseButton() const { return pause_; }
    QPushButton* stopButton() const { return stop_; }
    QTableWidget* runsTable() const { return runs_; }
    QString logText() const;
    QString statusText() const;

  public slots:
    void refreshRuns();
    // Continues the run of the history's selected row from its last checkpoint.
    void resumeSelected();
    // Merges the selected run's adapter into its base model as a new folder `out_dir`, on a
    // thread of its own with progress in the status line; "" asks for the folder. Emits
    // exportFinished with "" or the reason it failed.
    void exportMerged(const QString& out_dir = {});
    // The selected run's adapter as a PEFT folder ("peft", what transformers, SGLang and vLLM
    // load) or a llama.cpp LoRA GGUF ("gguf", for a GGUF base model) at `out`; "" asks where.
    // Emits exportFinished like exportMerged.
    void exportAdapter(const QString& format, const QString& out = {});

    // Deletes the selected run from the history and its output folder (checkpoints, adapter),
    // after a confirmation unless `confirmed`. A running run is not deleted.
    void deleteSelected(bool confirmed = false);
    // Asks for a new run with the selected run's configuration (the wizard, pre-filled).
    void duplicateSelected();
    // Asks for "Chat with this adapter" on the selected run's adapter (its base model and the
    // adapter side by side; a stopped run's is its steps so far): chatWithAdapterRequested, or
    // why not in the status line.
    void chatWithSelected();
    // Overlays the loss curves of the selected runs (from the history) on the loss chart, one
    // series per run; none selected clears them.
    void compareSelected();
    int compared() const { return int(overlays_.size()); }
    int comparedPoints(int i) const;

  signals:
    void exportFinished(const QString& error);
    void duplicateRequested(const moe::FinetuneSpec& spec);
    void chatWithAdapterRequested(const QString& model, const QString& adapter);

  private:
    // Runs `work(progress)` off the GUI thread for the selected run's base model and adapter,
    // with `what` and the progress in the status line, then emits exportFinished.
    void runExport(const QString& what, const QString& done_text,
                   std::function<void(const std::string& base, const std::string& adapter,
                                      const std::function<void(size_t, size_t)>& progress)>
                       work);
    void beginRun(const QString& title);
    void onStep(const TrainingStep& s);
    void onState(const QString& state, const QString& message);

    TrainingController* controller_;
    QString store_path_, state_ = "idle";
    QElapsedTimer elapsed_;
    QLineSeries *loss_, *eval_, *lr_, *grad_, *tokens_, *ram_;
    QList<QChart*> charts_;
    QProgressBar* progress_;
    QLabel *status_, *timing_;
    QPlainTextEdit* log_;
    QPushButton *pause_, *stop_, *resume_run_, *export_merged_, *export_adapter_, *delete_run_,
        *duplicate_run_, *compare_runs_, *chat_run_;
    QList<QLineSeries*> overlays_;  // compared runs' loss curves
    QTableWidget* runs_;
};

}  // namespace moeui
