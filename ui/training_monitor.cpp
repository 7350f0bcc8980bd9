#include "training_monitor.h"

#include <QApplication>
#include <QChart>
#include <QChartView>
#include <QFileDialog>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonDocument>
#include <QLabel>
#include <QLineSeries>
#include <QMenu>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPointer>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>
#include <QValueAxis>
#include <algorithm>
#include <filesystem>
#include <thread>

#include "api/adapter_export.h"
#include "api/training_job.h"
#include "store/training_runs.h"

namespace moeui {

namespace {

QString duration(double s) {
    const qint64 t = qint64(s + 0.5);
    return t >= 3600 ? QString("%1:%2:%3")
                           .arg(t / 3600)
                           .arg(t / 60 % 60, 2, 10, QChar('0'))
                           .arg(t % 60, 2, 10, QChar('0'))
                     : QString("%1:%2").arg(t / 60).arg(t % 60, 2, 10, QChar('0'));
}

// Axes that follow the data (QtCharts does not rescale by itself).
void extend(QChart* chart, double x, double y) {
    const auto xs = chart->axes(Qt::Horizontal), ys = chart->axes(Qt::Vertical);
    if (xs.isEmpty() || ys.isEmpty()) return;
    auto* ax = static_cast<QValueAxis*>(xs.front());
    auto* ay = static_cast<QValueAxis*>(ys.front());
    ax->setRange(0, std::max(ax->max(), x));
    const bool first = ay->min() == 0 && ay->max() == 0;
    ay->setRange(first ? std::min(0.0, y) : std::min(ay->min(), y),
                 first ? y * 1.1 + 1e-12 : std::max(ay->max(), y * 1.05));
}

}  // namespace

TrainingMonitor::TrainingMonitor(TrainingController* controller, const QString& store_path,
                                 QWidget* parent)
    : QWidget(parent), controller_(controller), store_path_(store_path) {
    setWindowTitle(tr("Fine-tuning monitor"));
    auto* grid = new QGridLayout;
    const auto chart = [&](const QString& title, QLineSeries* a, QLineSeries* b, int r, int c) {
        auto* ch = new QChart;
        ch->setTitle(title);
        ch->addSeries(a);
        if (b) ch->addSeries(b);
        auto* ax = new QValueAxis;
        auto* ay = new QValueAxis;
        ax->setRange(0, 1);
        ay->setRange(0, 0);
        ch->addAxis(ax, Qt::AlignBottom);
        ch->addAxis(ay, Qt::AlignLeft);
        for (QLineSeries* s : {a, b})
            if (s) s->attachAxis(ax), s->attachAxis(ay);
        ch->legend()->setVisible(b != nullptr);
        auto* view = new QChartView(ch);
        view->setRenderHint(QPainter::Antialiasing);
        view->setMinimumSize(260, 180);
        grid->addWidget(view, r, c);
        charts_ << ch;
    };
    loss_ = new QLineSeries(this);
    loss_->setName(tr("loss"));
    eval_ = new QLineSeries(this);
    eval_->setName(tr("eval loss"));
    lr_ = new QLineSeries(this);
    grad_ = new QLineSeries(this);
    tokens_ = new QLineSeries(this);
    ram_ = new QLineSeries(this);
    chart(tr("Loss"), loss_, eval_, 0, 0);
    chart(tr("Learning rate"), lr_, nullptr, 0, 1);
    chart(tr("Grad norm"), grad_, nullptr, 0, 2);
    chart(tr("Tokens/s"), tokens_, nullptr, 1, 0);
    chart(tr("RAM (MiB)"), ram_, nullptr, 1, 1);

    auto* side = new QVBoxLayout;
    status_ = new QLabel(tr("No run"));
    timing_ = new QLabel;
    progress_ = new QProgressBar;
    pause_ = new QPushButton(tr("Pause"));
    stop_ = new QPushButton(tr("Stop"));
    pause_->setEnabled(false);
    stop_->setEnabled(false);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(pause_);
    buttons->addWidget(stop_);
    side->addWidget(status_);
    side->addWidget(progress_);
    side->addWidget(timing_);
    side->addLayout(buttons);
    side->addStretch();
    auto* sideBox = new QWidget;
    sideBox->setLayout(side);
    grid->addWidget(sideBox, 1, 2);

    log_ = new QPlainTextEdit;
    log_->setReadOnly(true);
    runs_ = new QTableWidget(0, 6);
    runs_->setHorizontalHeaderLabels(
        {tr("Run"), tr("Status"), tr("Model"), tr("Final loss"), tr("Duration"), tr("Config")});
    runs_->horizontalHeader()->setStretchLastSection(true);
    runs_->setSelectionBehavior(QAbstractItemView::SelectRows);
    runs_->setSelectionMode(QAbstractItemView::ExtendedSelection);  // several runs to compare
    runs_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    resume_run_ = new QPushButton(tr("Resume selected run"));
    export_adapter_ = new QPushButton(tr("Export adapter"));
    export_adapter_->setToolTip(
        tr("The run's adapter as a PEFT folder (transformers, SGLang, vLLM) "
           "or a llama.cpp LoRA GGUF (GGUF base models)"));
    auto* adapter_menu = new QMenu(export_adapter_);
    adapter_menu->addAction(tr("PEFT folder..."), this, [this] { exportAdapter("peft"); });
    adapter_menu->addAction(tr("llama.cpp GGUF..."), this, [this] { exportAdapter("gguf"); });
    export_adapter_->setMenu(adapter_menu);
    export_merged_ = new QPushButton(tr("Export merged model..."));
    export_merged_->setToolTip(
        tr("The selected run's adapter merged into its base model, as a new model folder"));
    auto* history = new QWidget;
    auto* hl = new QVBoxLayout(history);
    hl->setContentsMargins(0, 0, 0, 0);
    hl->addWidget(runs_);
    auto* history_buttons = new QHBoxLayout;
    compare_runs_ = new QPushButton(tr("Compare selected"));
    compare_runs_->setToolTip(tr("Overlay the loss curves of the selected runs"));
    duplicate_run_ = new QPushButton(tr("Duplicate..."));
    delete_run_ = new QPushButton(tr("Delete..."));
    chat_run_ = new QPushButton(tr("Chat with adapter..."));
    chat_run_->setToolTip(
        tr("The selected run's base model and its adapter answering the same prompt, side by "
           "side"));
    history_buttons->addWidget(resume_run_);
    history_buttons->addWidget(export_merged_);
    history_buttons->addWidget(export_adapter_);
    history_buttons->addWidget(compare_runs_);
    history_buttons->addWidget(chat_run_);
    history_buttons->addWidget(duplicate_run_);
    history_buttons->addWidget(delete_run_);
    hl->addLayout(history_buttons);

    auto* top = new QWidget;
    top->setLayout(grid);
    auto* split = new QSplitter(Qt::Vertical);
    split->addWidget(top);
    split->addWidget(log_);
    split->addWidget(history);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(split);

    connect(pause_, &QPushButton::clicked, this, [this] {
        if (state_ == "paused")
            controller_->resume();
        else
            controller_->pause();
    });
    connect(stop_, &QPushButton::clicked, this, [this] { controller_->stop(); });
    connect(resume_run_, &QPushButton::clicked, this, &TrainingMonitor::resumeSelected);
    connect(export_merged_, &QPushButton::clicked, this, [this] { exportMerged(); });
    connect(duplicate_run_, &QPushButton::clicked, this, &TrainingMonitor::duplicateSelected);
    connect(compare_runs_, &QPushButton::clicked, this, &TrainingMonitor::compareSelected);
    connect(delete_run_, &QPushButton::clicked, this, [this] { deleteSelected(); });
    connect(chat_run_, &QPushButton::clicked, this, &TrainingMonitor::chatWithSelected);
    connect(controller_, &TrainingController::stepDone, this, &TrainingMonitor::onStep);
    connect(controller_, &TrainingController::stateChanged, this, &TrainingMonitor::onState);
    connect(controller_, &TrainingController::logLine, log_, &QPlainTextEdit::appendPlainText);
    refreshRuns();
}

void TrainingMonitor::start(const moe::FinetuneSpec& spec, const QString& title,
                            qint64 resume_run) {
    beginRun(title);
    controller_->start(spec, resume_run);
}

void TrainingMonitor::beginRun(const QString& title) {
    for (QLineSeries* s : {loss_, eval_, lr_, grad_, tokens_, ram_}) s->clear();
    for (QChart* c : charts_) {
        c->axes(Qt::Horizontal).front()->setRange(0, 1);
        c->axes(Qt::Vertical).front()->setRange(0, 0);
    }
    log_->appendPlainText(title);
    status_->setText(title);
    elapsed_.start();
}

int TrainingMonitor::points(const QString& series) const {
    const QMap<QString, QLineSeries*> m = {{"loss", loss_}, {"eval", eval_},     {"lr", lr_},
                                           {"grad", grad_}, {"tokens", tokens_}, {"ram", ram_}};
    return m.contains(series) ? int(m[series]->count()) : -1;
}

QString TrainingMonitor::logText() const {
    return log_->toPlainText();
}

void TrainingMonitor::onStep(const TrainingStep& s) {
    const double x = double(s.step);
    const auto add = [&](QLineSeries* series, int chart, double y) {
        series->append(x, y);
        extend(charts_[chart], x, y);
    };
    add(loss_, 0, s.loss);
    if (s.has_eval) add(eval_, 0, s.eval_loss);
    add(lr_, 1, s.lr);
    add(grad_, 2, s.grad_norm);
    add(tokens_, 3, s.tokens_per_s);
    add(ram_, 4, double(s.ram_bytes) / (1 << 20));
    progress_->setRange(0, int(s.total));
    progress_->setValue(int(s.step));
    // ETA from this run's mean step time (steps of a resumed run before it are not counted).
    const double el = elapsed_.isValid() ? elapsed_.elapsed() / 1000.0 : 0.0;
    const double per = loss_->count() > 0 ? el / double(loss_->count()) : s.step_seconds;
    timing_->setText(tr("step %1/%2 · loss %3 · elapsed %4 · ETA %5")
                         .arg(s.step)
                         .arg(s.total)
                         .arg(s.loss, 0, 'f', 4)
                         .arg(duration(el))
                         .arg(duration(per * double(s.total - s.step))));
}

void TrainingMonitor::onState(const QString& state, const QString& message) {
    state_ = state;
    const bool live = state == "preparing" || state == "running" || state == "paused";
    pause_->setEnabled(state == "running" || state == "paused");
    pause_->setText(state == "paused" ? tr("Resume") : tr("Pause"));
    stop_->setEnabled(live);
    resume_run_->setEnabled(!live);
    status_->setText(message.isEmpty() ? tr("Run %1").arg(state) : tr("Failed: %1").arg(message));
    if (state == "failed") log_->appendPlainText(tr("failed: %1").arg(message));
    if (!live) refreshRuns();
}

void TrainingMonitor::refreshRuns() {
    runs_->setRowCount(0);
    if (store_path_.isEmpty()) return;
    try {
        moe::TrainingRunStore store(store_path_.toStdString());
        for (const moe::TrainingRun& r : store.runs()) {
            const auto metrics = store.metrics(r.id);
            const int row = runs_->rowCount();
            runs_->insertRow(row);
            double seconds = 0;
            for (const auto& m : metrics) seconds += m.step_seconds;
            const QStringList cells = {
                QString::number(r.id),
                QString::fromStdString(r.status),
                QString::fromStdString(r.model),
                metrics.empty() ? QString("-") : QString::number(metrics.back().loss, 'f', 4),
                duration(seconds),
                QString::fromStdString(r.config)};
            for (int c = 0; c < cells.size(); ++c)
                runs_->setItem(row, c, new QTableWidgetItem(cells[c]));
        }
    } catch (const std::exception& e) {
        log_->appendPlainText(tr("runs history: %1").arg(e.what()));
    }
}

void TrainingMonitor::exportMerged(const QString& out_dir_in) {
    QString out_dir = out_dir_in;
    if (out_dir.isEmpty())
        out_dir = QFileDialog::getExistingDirectory(this, tr("Folder for the merged model"));
    if (out_dir.isEmpty()) return;
    runExport(tr("the merged model"), tr("Merged model written to %1").arg(out_dir),
              [out = out_dir.toStdString()](const std::string& base, const std::string& adapter,
                                            const std::function<void(size_t, size_t)>& progress) {
                  moe::export_merged_model(base, adapter, out, progress);
              });
}

void TrainingMonitor::exportAdapter(const QString& format, const QString& out_in) {
    QString out = out_in;
    if (out.isEmpty()) {
        out = format == "gguf"
                  ? QFileDialog::getSaveFileName(this, tr("llama.cpp LoRA adapter"), {},
                                                 tr("GGUF (*.gguf)"))
                  : QFileDialog::getExistingDirectory(this, tr("Folder for the PEFT adapter"));
    }
    if (out.isEmpty()) return;
    runExport(tr("the adapter"), tr("Adapter (%1) written to %2").arg(format, out),
              [out = out.toStdString(), f = format.toStdString()](
                  const std::string& base, const std::string& adapter,
                  const std::function<void(size_t, size_t)>&) {
                  moe::convert_adapter(base, adapter, f, out);
              });
}

void TrainingMonitor::runExport(const QString& what, const QString& done_text,
                                std::function<void(const std::string&, const std::string&,
                                                   const std::function<void(size_t, size_t)>&)>
                                    work) {
    const int row = runs_->currentRow();
    if (row < 0) {
        emit exportFinished(tr("select a run first"));
        return;
    }
    moe::FinetuneSpec spec;
    try {
        spec = moe::FinetuneSpec::from_json(
            nlohmann::json::parse(runs_->item(row, 5)->text().toStdString()));
    } catch (const std::exception& e) {
        status_->setText(QString::fromStdString(e.what()));
        emit exportFinished(status_->text());
        return;
    }
    const std::string adapter = spec.out + "/adapter", base = spec.model;
    export_merged_->setEnabled(false);
    export_adapter_->setEnabled(false);
    status_->setText(tr("Exporting %1...").arg(what));
    // Exports read and write whole models: off the GUI thread, progress posted back.
    QPointer<TrainingMonitor> self(this);
    std::thread([self, base, adapter, what, done_text, work = std::move(work)] {
        QString error;
        try {
            work(base, adapter, [self, what](size_t done, size_t total) {
                QMetaObject::invokeMethod(qApp, [self, what, done, total] {
                    if (self)
                        self->status_->setText(self->tr("Exporting %1: %2 of %3 tensors")
                                                   .arg(what)
                                                   .arg(done)
                                                   .arg(total));
                });
            });
        } catch (const std::exception& e) {
            error = QString::fromStdString(e.what());
        }
        QMetaObject::invokeMethod(qApp, [self, error, done_text] {
            if (!self) return;
            self->export_merged_->setEnabled(true);
            self->export_adapter_->setEnabled(true);
            self->status_->setText(error.isEmpty() ? done_text : error);
            self->log_->appendPlainText(self->status_->text());
            emit self->exportFinished(error);
        });
    }).detach();
}

void TrainingMonitor::compareSelected() {
    QChart* chart = charts_.front();  // the loss chart
    for (QLineSeries* s : overlays_) {
        chart->removeSeries(s);
        delete s;
    }
    overlays_.clear();
    if (store_path_.isEmpty()) return;
    QList<int> rows;
    for (const QModelIndex& i : runs_->selectionModel()->selectedRows()) rows << i.row();
    std::sort(rows.begin(), rows.end());
    try {
        moe::TrainingRunStore store(store_path_.toStdString());
        for (const int row : rows) {
            const qint64 id = runs_->item(row, 0)->text().toLongLong();
            auto* s = new QLineSeries;
            s->setName(tr("run %1").arg(id));
            for (const moe::TrainingMetricsRow& m : store.metrics(id)) {
                s->append(double(m.step), m.loss);
                extend(chart, double(m.step), m.loss);
            }
            chart->addSeries(s);
            for (QAbstractAxis* a : chart->axes()) s->attachAxis(a);
            overlays_ << s;
        }
    } catch (const std::exception& e) {
        status_->setText(QString::fromStdString(e.what()));
    }
}

int TrainingMonitor::comparedPoints(int i) const {
    return overlays_.at(i)->count();
}

void TrainingMonitor::duplicateSelected() {
    const int row = runs_->currentRow();
    if (row < 0) return;
    try {
        moe::FinetuneSpec spec = moe::FinetuneSpec::from_json(
            nlohmann::json::parse(runs_->item(row, 5)->text().toStdString()));
        spec.resume.clear();
        emit duplicateRequested(spec);
    } catch (const std::exception& e) {
        status_->setText(QString::fromStdString(e.what()));
    }
}

void TrainingMonitor::chatWithSelected() {
    const int row = runs_->currentRow();
    if (row < 0) {
        status_->setText(tr("Select a run first"));
        return;
    }
    try {
        const moe::FinetuneSpec spec = moe::FinetuneSpec::from_json(
            nlohmann::json::parse(runs_->item(row, 5)->text().toStdString()));
        // A run saves its adapter when it ends, stopped ones too (the steps done so far).
        const std::string adapter = spec.out + "/adapter";
        const QString id = runs_->item(row, 0)->text(), status = runs_->item(row, 1)->text();
        if (!std::filesystem::exists(adapter + "/adapter_config.json")) {
            status_->setText(
                tr("Run %1 has no adapter in %2 yet").arg(id, QString::fromStdString(adapter)));
            return;
        }
        status_->setText(
            status == "finished"
                ? tr("Chatting with run %1's adapter").arg(id)
                : tr("Run %1 is %2: chatting with its adapter so far").arg(id, status));
        emit chatWithAdapterRequested(QString::fromStdString(spec.model),
                                      QString::fromStdString(adapter));
    } catch (const std::exception& e) {
        status_->setText(QString::fromStdString(e.what()));
    }
}

QString TrainingMonitor::statusText() const {
    return status_->text();
}

void TrainingMonitor::deleteSelected(bool confirmed) {
    const int row = runs_->currentRow();
    if (row < 0 || store_path_.isEmpty()) return;
    const qint64 id = runs_->item(row, 0)->text().toLongLong();
    if (runs_->item(row, 1)->text() == "running") {
        status_->setText(tr("Run %1 is running: stop it before deleting it").arg(id));
        return;
    }
    std::string out;
    try {
        out = moe::FinetuneSpec::from_json(
                  nlohmann::json::parse(runs_->item(row, 5)->text().toStdString()))
                  .out;
    } catch (const std::exception&) {
        // A run whose configuration cannot be read: only its history row goes.
    }
    if (!confirmed &&
        QMessageBox::question(
            this, tr("Delete run"),
            tr("Delete run %1 from the history%2?")
                .arg(id)
                .arg(out.empty() ? QString()
                                 : tr(" and its folder %1 (checkpoints and adapter)")
                                       .arg(QString::fromStdString(out)))) != QMessageBox::Yes)
        return;
    try {
        moe::TrainingRunStore(store_path_.toStdString()).delete_run(id);
        std::error_code ec;
        if (!out.empty()) std::filesystem::remove_all(out, ec);
        status_->setText(ec ? tr("Run %1 deleted; its folder could not be removed: %2")
                                  .arg(id)
                                  .arg(QString::fromStdString(ec.message()))
                            : tr("Run %1 deleted").arg(id));
    } catch (const std::exception& e) {
        status_->setText(QString::fromStdString(e.what()));
    }
    refreshRuns();
}

void TrainingMonitor::resumeSelected() {
    const int row = runs_->currentRow();
    if (row < 0 || controller_->active()) return;
    const qint64 id = runs_->item(row, 0)->text().toLongLong();
    try {
        moe::FinetuneSpec spec = moe::FinetuneSpec::from_json(
            nlohmann::json::parse(runs_->item(row, 5)->text().toStdString()));
        spec.resume = moe::latest_checkpoint(spec.out);
        if (spec.resume.empty())
            throw std::runtime_error(spec.out + ": no checkpoint to resume from");
        start(spec, tr("Resuming run %1 from %2").arg(id).arg(QString::fromStdString(spec.resume)),
              id);
    } catch (const std::exception& e) {
        QMessageBox::warning(this, tr("Resume"), QString::fromUtf8(e.what()));
    }
}

}  // namespace moeui
