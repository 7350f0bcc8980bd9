#include "speed_panel.h"

#include <QGridLayout>
#include <QLabel>
#include <QPushButton>
#include <QTimer>

#include "format.h"

namespace moeui {

SpeedPanel::SpeedPanel(QWidget* parent) : QWidget(parent) {
    auto* g = new QGridLayout(this);
    g->setContentsMargins(0, 0, 0, 0);
    prediction_ = new QLabel(tr("Predicted: waiting for the model"), this);
    prediction_->setObjectName("predictionLabel");
    prediction_->setWordWrap(true);
    measured_ = new QLabel(this);
    measured_->setObjectName("measuredLabel");
    measured_->setWordWrap(true);
    calibration_ = new QLabel(this);
    calibration_->setObjectName("calibrationLabel");
    calibration_->setWordWrap(true);
    calibrate_ = new QPushButton(tr("Calibrate..."), this);
    calibrate_->setObjectName("calibrateButton");
    calibrate_->setToolTip(
        tr("Measure this machine's rates on the loaded model (CPU experts, dense weights, and "
           "the GPU part when the model runs on the GPU) for the predicted speed"));
    g->addWidget(prediction_, 0, 0);
    g->addWidget(calibrate_, 0, 1, 2, 1, Qt::AlignTop);
    g->addWidget(measured_, 1, 0);
    g->addWidget(calibration_, 2, 0, 1, 2);
    g->setColumnStretch(0, 1);
    connect(calibrate_, &QPushButton::clicked, this, [this] {
        calibrate_->setEnabled(false);
        calibration_->setText(tr("Calibrating..."));
        emit calibrateRequested();
    });
    debounce_ = new QTimer(this);
    debounce_->setSingleShot(true);
    debounce_->setInterval(kDebounceMs);
    connect(debounce_, &QTimer::timeout, this, &SpeedPanel::ask);
}

void SpeedPanel::placement_changed() {
    debounce_->start();  // restarts: only a pause in the edits asks
}

void SpeedPanel::ask() {
    if (in_flight_) {  // one at a time: the newest edit goes when the answer comes
        stale_ = true;
        return;
    }
    const QString placement = source_ ? source_() : QString();
    if (placement.isEmpty()) return;
    in_flight_ = true;
    stale_ = false;
    emit predictRequested(placement);
}

QString SpeedPanel::prediction_text() const {
    return prediction_->text();
}

QString SpeedPanel::measured_text() const {
    return measured_->text();
}

void SpeedPanel::predicted(const SpeedFigures& f) {
    in_flight_ = false;
    if (stale_) {  // an older edit's figures: ask for the newest instead of showing them
        ask();
        return;
    }
    if (!f.error.isEmpty()) {
        prediction_->setText(tr("Predicted: %1").arg(f.error));
        prediction_->setToolTip({});
    } else {
        QString s = tr("Predicted: decode %1 tok/s").arg(f.decode_tok_s, 0, 'f', 1);
        if (f.prefill_tok_s > 0)
            s += tr(" · prefill %1 tok/s (%2-token prompt)")
                     .arg(f.prefill_tok_s, 0, 'f', 0)
                     .arg(f.prompt_tokens);
        if (f.vram_bytes) s += tr(" · VRAM %1").arg(size_text(f.vram_bytes));
        s += tr(" · RAM %1").arg(size_text(f.ram_bytes));
        s += tr(" · %1 % of expert use on the GPU").arg(100.0 * f.gpu_share, 0, 'f', 0);
        prediction_->setText(s);
        QStringList tip = f.notes;
        if (!f.rates_machine.isEmpty()) tip << tr("rates measured on %1").arg(f.rates_machine);
        prediction_->setToolTip(tip.join("\n"));
    }
    measured_->setText(
        f.measured_decode_tok_s > 0
            ? tr("Measured (running model, last answer): decode %1 tok/s · prompt %2 tokens at "
                 "%3 tok/s")
                  .arg(f.measured_decode_tok_s, 0, 'f', 1)
                  .arg(f.measured_prompt_tokens)
                  .arg(f.measured_prompt_tok_s, 0, 'f', 0)
            : tr("Measured: no answer since the model was loaded"));
}

void SpeedPanel::calibration_progress(const QString& what) {
    calibration_->setText(tr("Calibrating: %1...").arg(what));
}

void SpeedPanel::calibrated(const QString& summary, const QString& error) {
    calibrate_->setEnabled(true);
    calibration_->setText(error.isEmpty() ? tr("Calibrated: %1").arg(summary)
                                          : tr("Calibration: %1").arg(error));
    if (error.isEmpty()) ask();  // the same edit, now with rates
}

}  // namespace moeui
