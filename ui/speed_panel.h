#pragma once
// The placement editor's predicted speed: the cost model's decode and prefill tok/s, memory
// and GPU share of expert use for the placement as edited, next to what the running model
// measured on its last answer, and the "Calibrate..." button that measures this machine's
// rates first. Edits arrive many per second while dragging: the panel waits for a pause
// (debounce) and keeps at most one prediction in flight on the engine thread, asking again
// for the newest edit when an answer comes back stale; the GUI never waits.
#include <QString>
#include <QStringList>
#include <QWidget>
#include <functional>
#include <utility>

class QLabel;
class QPushButton;
class QTimer;

namespace moeui {

// The engine's answer to a prediction (EngineHost::placementPredicted), in the UI's terms.
struct SpeedFigures {
    QString error;  // why there is no prediction ("" when there is)
    double decode_tok_s = 0, prefill_tok_s = 0;
    int prompt_tokens = 0;  // the prefill figure's batch
    quint64 vram_bytes = 0, ram_bytes = 0;
    double gpu_share = 0;  // of the routed expert use, 0..1
    QStringList notes;
    QString rates_machine;
    // The running model's last answer (0: none measured since loading).
    double measured_decode_tok_s = 0, measured_prompt_tok_s = 0;
    int measured_prompt_tokens = 0;
};

class SpeedPanel : public QWidget {
    Q_OBJECT

  public:
    explicit SpeedPanel(QWidget* parent = nullptr);
    // Where the placement as edited comes from (moe::Placement JSON, "" for none): read only
    // when a prediction is asked for, not at every step of a drag.
    void set_placement_source(std::function<QString()> source) { source_ = std::move(source); }
    // The placement changed: predicted after a short pause.
    void placement_changed();
    QString prediction_text() const;
    QString measured_text() const;
    QLabel* calibration_label() const { return calibration_; }
    QPushButton* calibrate_button() const { return calibrate_; }
    // Debounce of edits before a prediction is asked for (ms).
    static constexpr int kDebounceMs = 250;

  public slots:
    void predicted(const moeui::SpeedFigures& f);
    void calibration_progress(const QString& what);
    // The end of a calibration: its rates in words, or the error.
    void calibrated(const QString& summary, const QString& error);

  signals:
    void predictRequested(const QString& placement_json);
    void calibrateRequested();

  private:
    void ask();
    QLabel* prediction_ = nullptr;
    QLabel* measured_ = nullptr;
    QLabel* calibration_ = nullptr;
    QPushButton* calibrate_ = nullptr;
    QTimer* debounce_ = nullptr;
    std::function<QString()> source_;
    bool in_flight_ = false, stale_ = false;
};

}  // namespace moeui
