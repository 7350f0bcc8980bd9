#include "main_window.h"

#include <QAction>
#include <QActionGroup>
#include <QCloseEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QInputDialog>
#include <QKeySequence>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMenuBar>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QShortcut>
#include <QSplitter>
#include <QStatusBar>
#include <QTimer>
#include <QVBoxLayout>

#include "chat_view.h"
#include "format.h"
#include "hardware_dialog.h"
#ifdef MOE_HAVE_CHARTS
#include "adapter_chat_dialog.h"
#include "finetune_wizard.h"
#include "training_controller.h"
#include "training_monitor.h"
#endif
#include "model_library_dialog.h"
#include "model_map.h"
#include "profiler_window.h"
#include "settings_dialog.h"
#include "speed_panel.h"

namespace moeui {

MainWindow::MainWindow(const MainWindowOptions& options, QWidget* parent)
    : QMainWindow(parent), options_(options) {
    setObjectName("mainWindow");
    setWindowTitle(tr("MoE Studio"));
    host_ = new EngineHost(options.store_path, this);
    build_ui();
    build_menus();

    connect(host_, &EngineHost::conversationsChanged, this,
            [this](const QList<ConversationRow>& rows) {
                if (!search_query_.isEmpty()) return;  // the list shows search results
                conversations_->blockSignals(true);
                conversations_->clear();
                for (const auto& r : rows) {
                    auto* item = new QListWidgetItem(r.title, conversations_);
                    item->setData(Qt::UserRole, r.id);
                    if (r.id == current_) conversations_->setCurrentItem(item);
                }
                conversations_->blockSignals(false);
            });
    connect(host_, &EngineHost::conversationCreated, this, &MainWindow::select_conversation);
    connect(host_, &EngineHost::pathChanged, this,
            [this](qint64 conv, const QList<MessageRow>& rows) {
                if (conv != current_) return;
                chat_->set_messages(rows);
                if (host_->busy()) chat_->begin_answer();
                update_buttons();
            });
    connect(host_, &EngineHost::generationStarted, this, [this](qint64 conv) {
        if (conv == current_) chat_->begin_answer();
        update_buttons();
    });
    connect(host_, &EngineHost::textStreamed, this, [this](qint64 conv, const QString& piece) {
        if (conv == current_) chat_->append_piece(piece);
    });
    connect(host_, &EngineHost::busyChanged, this, [this] { update_buttons(); });
    connect(host_, &EngineHost::modelLoading, this, [this](const QString& path) {
        model_label_->setText(tr("Loading %1 ...").arg(path));
        load_bar_->setValue(0);
        load_bar_->show();
    });
    connect(host_, &EngineHost::loadProgress, this, [this](int permille, const QString& stage) {
        load_bar_->setValue(permille);
        load_bar_->setToolTip(stage);
        max_progress_ = std::max(max_progress_, permille);
    });
    connect(host_, &EngineHost::modelLoaded, this, [this](const QString& summary) {
        const bool demo = !options_.demo_model.isEmpty() &&
                          QFileInfo(loading_).canonicalFilePath() ==
                              QFileInfo(options_.demo_model).canonicalFilePath();
        const QString text = demo ? tr("Built-in demo model (random weights: its text is "
                                       "noise) · %1")
                                        .arg(summary)
                                  : summary;
        model_label_->setToolTip(text);
        load_bar_->hide();
        model_label_->setText(text.size() > 120 ? text.left(119) + QString::fromUtf8("…") : text);
        update_buttons();
    });
    connect(host_, &EngineHost::errorOccurred, this, [this](const QString& message) {
        statusBar()->showMessage(message, 15000);
        load_bar_->hide();
        if (!host_->model_loaded()) model_label_->setText(tr("No model loaded"));
    });
    connect(chat_, &ChatView::branchRequested, host_, &EngineHost::switchBranch);
    connect(host_, &EngineHost::searchResults, this,
            [this](const QString& query, const QList<SearchRow>& rows) {
                if (query != search_query_) return;  // an older query's answer
                conversations_->blockSignals(true);
                conversations_->clear();
                for (const auto& r : rows) {
                    QString snippet = r.snippet;
                    auto* item = new QListWidgetItem(
                        r.title + "\n" + snippet.replace('\n', ' ').left(80), conversations_);
                    item->setData(Qt::UserRole, r.conversation);
                }
                if (rows.isEmpty()) new QListWidgetItem(tr("Nothing found"), conversations_);
                conversations_->blockSignals(false);
            });
    connect(host_, &EngineHost::exported, this, [this](const QString& path) {
        statusBar()->showMessage(tr("Saved %1").arg(path), 8000);
    });

    QSettings settings;
    restoreGeometry(settings.value("window/geometry").toByteArray());
    splitter_->restoreState(settings.value("window/splitter").toByteArray());
    host_->refreshConversations();
    if (!settings.value("preflight/shown", false).toBool()) {  // first start: what this machine has
        settings.setValue("preflight/shown", true);
        QTimer::singleShot(0, this, &MainWindow::showHardware);
    }
    const QString last = settings.value("model/last").toString();
    if (!options_.initial_model.isEmpty()) {
        openModel(options_.initial_model);
    } else if (!last.isEmpty()) {
        openModel(last);
    } else if (!options_.demo_model.isEmpty()) {
        openModel(options_.demo_model);
    }
    update_buttons();
}

MainWindow::~MainWindow() = default;

void MainWindow::build_ui() {
    splitter_ = new QSplitter(this);
    auto* left = new QWidget(splitter_);
    auto* lv = new QVBoxLayout(left);
    auto* new_chat = new QPushButton(tr("New chat"), left);
    new_chat->setObjectName("newChatButton");
    search_ = new QLineEdit(left);
    search_->setObjectName("searchBox");
    search_->setPlaceholderText(tr("Search all chats (Ctrl+F)"));
    search_->setClearButtonEnabled(true);
    connect(search_, &QLineEdit::textChanged, this, &MainWindow::searchFor);
    conversations_ = new QListWidget(left);
    conversations_->setObjectName("conversationList");
    conversations_->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    conversations_->setTextElideMode(Qt::ElideRight);
    lv->addWidget(new_chat);
    lv->addWidget(search_);
    lv->addWidget(conversations_);
    connect(new_chat, &QPushButton::clicked, this, &MainWindow::newChat);
    connect(conversations_, &QListWidget::currentItemChanged, this, [this](QListWidgetItem* item) {
        if (item) select_conversation(item->data(Qt::UserRole).toLongLong());
    });

    auto* right = new QWidget(splitter_);
    auto* rv = new QVBoxLayout(right);
    chat_ = new ChatView(right);
    input_ = new QPlainTextEdit(right);
    input_->setObjectName("promptInput");
    input_->setPlaceholderText(tr("Message the model (Ctrl+Enter to send)"));
    input_->setMaximumHeight(120);
    auto* buttons = new QHBoxLayout;
    send_ = new QPushButton(tr("Send"), right);
    send_->setObjectName("sendButton");
    stop_ = new QPushButton(tr("Stop"), right);
    stop_->setObjectName("stopButton");
    regenerate_ = new QPushButton(tr("Regenerate"), right);
    regenerate_->setObjectName("regenerateButton");
    buttons->addStretch();
    buttons->addWidget(regenerate_);
    buttons->addWidget(stop_);
    buttons->addWidget(send_);
    rv->addWidget(chat_, 1);
    rv->addWidget(input_);
    rv->addLayout(buttons);
    connect(send_, &QPushButton::clicked, this, &MainWindow::sendInput);
    connect(stop_, &QPushButton::clicked, this, &MainWindow::stopGeneration);
    connect(regenerate_, &QPushButton::clicked, this, &MainWindow::regenerateLast);

    splitter_->addWidget(left);
    splitter_->addWidget(right);
    splitter_->setStretchFactor(1, 1);
    setCentralWidget(splitter_);
    model_label_ = new QLabel(tr("No model loaded"), this);
    model_label_->setObjectName("modelLabel");
    memory_label_ = new QLabel(this);
    memory_label_->setObjectName("memoryLabel");
    load_bar_ = new QProgressBar(this);
    load_bar_->setObjectName("loadProgress");
    load_bar_->setRange(0, 1000);
    load_bar_->setMaximumWidth(220);
    load_bar_->hide();
    statusBar()->addPermanentWidget(load_bar_);
    statusBar()->addPermanentWidget(model_label_, 1);
    statusBar()->addPermanentWidget(memory_label_);
    gpus_ = moe::system_status(true).gpus;
    auto* timer = new QTimer(this);
    connect(timer, &QTimer::timeout, this, &MainWindow::update_memory);
    timer->start(2000);
    update_memory();
    resize(1100, 720);

    auto* send_key = new QShortcut(QKeySequence(Qt::CTRL | Qt::Key_Return), this);
    connect(send_key, &QShortcut::activated, this, &MainWindow::sendInput);
    auto* stop_key = new QShortcut(QKeySequence(Qt::Key_Escape), this);
    connect(stop_key, &QShortcut::activated, this, &MainWindow::stopGeneration);
}

void MainWindow::build_menus() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    file->addAction(tr("Model &library..."), QKeySequence(Qt::CTRL | Qt::Key_L), this,
                    &MainWindow::showLibrary);
    file->addAction(tr("Open GGUF model..."), this, [this] {
        const QString f =
            QFileDialog::getOpenFileName(this, tr("Open model"), {}, tr("GGUF models (*.gguf)"));
        if (!f.isEmpty()) openModel(f);
    });
    file->addAction(tr("Open model folder..."), this, [this] {
        const QString d = QFileDialog::getExistingDirectory(this, tr("Hugging Face model folder"));
        if (!d.isEmpty()) openModel(d);
    });
    if (!options_.demo_model.isEmpty())
        file->addAction(tr("Load the demo model"), this,
                        [this] { openModel(options_.demo_model); });
    file->addAction(tr("GPU memory &budget..."), this, [this] {
        bool ok = false;
        const double gib = QInputDialog::getDouble(
            this, tr("GPU memory budget"),
            tr("GiB of GPU memory the model may use (0 = CPU only); applies when a model loads"),
            gpu_budget(), 0.0, 4096.0, 1, &ok);
        if (ok) QSettings().setValue("model/gpu_budget_gib", gib);
    });
    // Placement presets (the planner's --cpu-experts): where the routed experts go when a model
    // loads; the budget above bounds what lands on the GPU.
    QMenu* presets = file->addMenu(tr("Expert &placement"));
    auto* group = new QActionGroup(presets);
    const std::pair<QString, QString> choices[] = {
        {"auto", tr("&Auto: attention on the GPU, then experts while the budget lasts")},
        {"all", tr("All routed experts on the &CPU (attention and dense layers on the GPU)")},
        {"none", tr("Everything on the &GPU (needs the whole model in the budget)")}};
    for (const auto& [key, label] : choices) {
        QAction* a = presets->addAction(label);
        a->setCheckable(true);
        a->setData(key);
        a->setChecked(key == placement_preset());
        group->addAction(a);
        connect(a, &QAction::triggered, this,
                [key] { QSettings().setValue("model/cpu_experts", key); });
    }
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

    QMenu* chat = menuBar()->addMenu(tr("&Chat"));
    chat->addAction(tr("&New chat"), QKeySequence::New, this, &MainWindow::newChat);
    chat->addAction(tr("&Edit last question..."), QKeySequence(Qt::CTRL | Qt::Key_E), this, [this] {
        const qint64 q = chat_->last_question();
        if (!q || host_->busy()) return;
        QString old;
        for (const auto& m : chat_->messages())
            if (m.id == q) old = m.content;
        bool ok = false;
        const QString t =
            QInputDialog::getMultiLineText(this, tr("Edit question"), tr("Question"), old, &ok);
        if (ok && !t.trimmed().isEmpty()) editLastQuestion(t.trimmed());
    });
    chat->addAction(tr("Chat &settings..."), this, [this] {
        if (!current_) return;
        connect(
            host_, &EngineHost::settingsLoaded, this,
            [this](qint64 conv, const QString& json) {
                SettingsDialog d(json, this);
                if (d.exec() == QDialog::Accepted) host_->saveSettings(conv, d.json());
            },
            Qt::SingleShotConnection);
        host_->loadSettings(current_);
    });
    chat->addSeparator();
    chat->addAction(tr("Export as &Markdown..."), this, [this] {
        const QString f =
            QFileDialog::getSaveFileName(this, tr("Export chat"), {}, tr("Markdown (*.md)"));
        if (!f.isEmpty()) exportCurrent(f, false);
    });
    chat->addAction(tr("Export as &JSON..."), this, [this] {
        const QString f =
            QFileDialog::getSaveFileName(this, tr("Export chat"), {}, tr("JSON (*.json)"));
        if (!f.isEmpty()) exportCurrent(f, true);
    });
    chat->addAction(tr("&Import JSON..."), this, [this] {
        const QString f =
            QFileDialog::getOpenFileName(this, tr("Import chat"), {}, tr("JSON (*.json)"));
        if (!f.isEmpty()) importFile(f);
    });
    chat->addSeparator();
    auto* find = new QShortcut(QKeySequence::Find, this);
    connect(find, &QShortcut::activated, this, [this] { search_->setFocus(); });
    chat->addAction(tr("&Rename..."), this, [this] {
        if (!current_) return;
        bool ok = false;
        const QString t =
            QInputDialog::getText(this, tr("Rename chat"), tr("Title"), QLineEdit::Normal, {}, &ok);
        if (ok && !t.trimmed().isEmpty()) host_->renameConversation(current_, t.trimmed());
    });
    chat->addAction(tr("&Delete"), QKeySequence::Delete, this, [this] {
        if (!current_) return;
        deleted_ = current_;
        host_->deleteConversation(current_);
        current_ = 0;
        chat_->set_messages({});
        statusBar()->showMessage(tr("Chat deleted — Ctrl+Z brings it back"), 10000);
        update_buttons();
    });
    chat->addAction(tr("&Undo delete"), QKeySequence::Undo, this, [this] {
        if (!deleted_) return;
        host_->undoDelete(deleted_);
        select_conversation(deleted_);
        deleted_ = 0;
    });
    QMenu* view = menuBar()->addMenu(tr("&View"));
    view->addAction(tr("Model &map..."), QKeySequence(Qt::CTRL | Qt::Key_M), this,
                    &MainWindow::showModelMap);
    view->addAction(tr("&Profiler..."), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_P), this,
                    &MainWindow::showProfiler);
#ifdef MOE_HAVE_CHARTS
    QMenu* tools = menuBar()->addMenu(tr("&Tools"));
    tools->addAction(tr("&Fine-tune..."), this, &MainWindow::showFinetune);
    tools->addAction(tr("&Training runs..."), this, &MainWindow::showTrainingMonitor);
#endif
    QMenu* help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&Hardware..."), this, &MainWindow::showHardware);
}

QWizard* MainWindow::showFinetune() {
#ifdef MOE_HAVE_CHARTS
    auto* wizard =
        new FinetuneWizard(QSettings().value("model/last").toString(), options_.store_path, this);
    wizard->setAttribute(Qt::WA_DeleteOnClose);
    connect(wizard, &QWizard::accepted, this, [this, wizard] {
        auto* monitor = static_cast<TrainingMonitor*>(showTrainingMonitor());
        monitor->start(wizard->spec(), tr("Fine-tuning %1").arg(wizard->modelEdit->text()));
    });
    wizard->show();
    return wizard;
#else
    return nullptr;
#endif
}

QWidget* MainWindow::showTrainingMonitor() {
#ifdef MOE_HAVE_CHARTS
    auto* monitor = static_cast<TrainingMonitor*>(monitor_);
    if (!monitor) {
        // Kept for the window's life: closing the app stops a run with a checkpoint (the
        // job's destructor), and the runs history here resumes it after a restart.
        auto* controller = new TrainingController(this);
        monitor = new TrainingMonitor(controller, options_.store_path, this);
        monitor->setWindowFlag(Qt::Window);
        monitor_ = monitor;
        // Duplicate: the wizard pre-filled with that run's configuration.
        connect(monitor, &TrainingMonitor::duplicateRequested, this,
                [this](const moe::FinetuneSpec& spec) {
                    if (auto* w = static_cast<FinetuneWizard*>(showFinetune())) w->setSpec(spec);
                });
        // A/B: the run's base model and adapter side by side, on the engine's thread.
        connect(monitor, &TrainingMonitor::chatWithAdapterRequested, this,
                [this](const QString& model, const QString& adapter) {
                    auto* d = new AdapterChatDialog(host_, model, adapter, this);
                    d->setAttribute(Qt::WA_DeleteOnClose);
                    d->show();
                });
    }
    monitor->refreshRuns();
    monitor->show();
    monitor->raise();
    return monitor;
#else
    return nullptr;
#endif
}

void MainWindow::openModel(const QString& path) {
    loading_ = path;
    QSettings().setValue("model/last", QFileInfo(path).absoluteFilePath());
    host_->loadModel(path, gpu_budget(), placement_preset());
}

QString MainWindow::placement_preset() const {
    const QString p = QSettings().value("model/cpu_experts", "auto").toString();
    return p == "all" || p == "none" ? p : QString("auto");
}

double MainWindow::gpu_budget() const {
    // Default: most of the first GPU's free memory; none without a GPU.
    const double fallback =
        gpus_.empty() ? 0.0 : 0.9 * double(gpus_.front().free_bytes) / double(1ull << 30);
    return QSettings().value("model/gpu_budget_gib", fallback).toDouble();
}

void MainWindow::update_memory() {
    const moe::SystemStatus s = moe::system_status(false);
    QString text = tr("RAM %1 used, %2 free").arg(gib(s.resident_bytes), gib(s.available_bytes));
    if (!gpus_.empty())
        text +=
            tr(" · %1 (%2)")
                .arg(QString::fromStdString(gpus_.front().name), gib(gpus_.front().total_bytes));
    else
        text += tr(" · no GPU: everything on the CPU");
    memory_label_->setText(text);
}

void MainWindow::newChat() {
    host_->newConversation();
}

void MainWindow::select_conversation(qint64 id) {
    current_ = id;
    host_->openConversation(id);
    host_->refreshConversations();
    update_buttons();
}

void MainWindow::sendInput() {
    const QString text = input_->toPlainText().trimmed();
    if (text.isEmpty() || host_->busy() || !host_->model_loaded()) return;
    if (!current_) {  // the first message opens a chat
        connect(
            host_, &EngineHost::conversationCreated, this,
            [this, text](qint64 id) { host_->send(id, text); }, Qt::SingleShotConnection);
        host_->newConversation();
    } else {
        host_->send(current_, text);
    }
    input_->clear();
}

void MainWindow::stopGeneration() {
    host_->stop();
}

void MainWindow::regenerateLast() {
    const qint64 answer = chat_->last_answer();
    if (answer && !host_->busy()) host_->regenerate(answer);
}

ModelMapDialog* MainWindow::showModelMap() {
    auto* d = new ModelMapDialog(this);
    d->setAttribute(Qt::WA_DeleteOnClose);
    connect(host_, &EngineHost::modelMapReady, d, &ModelMapDialog::set_data);
    connect(d, &ModelMapDialog::applyRequested, host_, &EngineHost::applyPlacement);
    connect(host_, &EngineHost::placementApplied, d, [this, d](const QString& error) {
        d->applied(error);
        if (error.isEmpty()) host_->requestModelMap();  // the experts as they are now
    });
    connect(d, &ModelMapDialog::presetRequested, host_, &EngineHost::planPreset);
    connect(host_, &EngineHost::presetPlanned, d, &ModelMapDialog::preset_planned);
    connect(d, &ModelMapDialog::profilesRequested, host_, &EngineHost::listPlacementProfiles);
    connect(d, &ModelMapDialog::profileSaveRequested, host_, &EngineHost::savePlacementProfile);
    connect(d, &ModelMapDialog::profileLoadRequested, host_, &EngineHost::loadPlacementProfile);
    connect(d, &ModelMapDialog::profileDeleteRequested, host_, &EngineHost::deletePlacementProfile);
    connect(host_, &EngineHost::placementProfiles, d, &ModelMapDialog::set_profiles);
    connect(host_, &EngineHost::placementProfileLoaded, d, &ModelMapDialog::profile_loaded);
    connect(host_, &EngineHost::placementProfileChanged, d, &ModelMapDialog::profile_changed);
    connect(d, &ModelMapDialog::predictRequested, host_, &EngineHost::predictPlacement);
    connect(d, &ModelMapDialog::calibrateRequested, host_, &EngineHost::calibrate);
    connect(host_, &EngineHost::placementPredicted, d->speed_panel(), &SpeedPanel::predicted);
    connect(host_, &EngineHost::calibrationProgress, d->speed_panel(),
            &SpeedPanel::calibration_progress);
    connect(host_, &EngineHost::calibrated, d->speed_panel(), &SpeedPanel::calibrated);
    host_->requestModelMap();
    d->show();
    return d;
}

ProfilerWindow* MainWindow::showProfiler() {
    auto* w = new ProfilerWindow(this);
    w->setAttribute(Qt::WA_DeleteOnClose);
    w->show();
    return w;
}

HardwareDialog* MainWindow::showHardware() {
    auto* d = new HardwareDialog(this);
    d->setAttribute(Qt::WA_DeleteOnClose);
    d->show();
    return d;
}

ModelLibraryDialog* MainWindow::showLibrary() {
    auto* d = new ModelLibraryDialog(this);
    d->setAttribute(Qt::WA_DeleteOnClose);
    connect(d, &ModelLibraryDialog::loadRequested, this, &MainWindow::openModel);
    d->show();
    return d;
}

void MainWindow::editLastQuestion(const QString& text) {
    const qint64 q = chat_->last_question();
    if (!q || host_->busy()) return;
    host_->edit(q, text);
}

void MainWindow::searchFor(const QString& query) {
    search_query_ = query.trimmed();
    if (search_query_.isEmpty()) {
        host_->refreshConversations();
    } else {
        host_->search(search_query_);
    }
}

void MainWindow::exportCurrent(const QString& path, bool json) {
    if (current_) host_->exportConversation(current_, path, json);
}

void MainWindow::importFile(const QString& path) {
    host_->importConversation(path);
}

void MainWindow::update_buttons() {
    const bool busy = host_->busy();
    send_->setEnabled(!busy && host_->model_loaded());
    stop_->setEnabled(busy);
    regenerate_->setEnabled(!busy && host_->model_loaded() && chat_->last_answer() != 0);
}

void MainWindow::closeEvent(QCloseEvent* e) {
    QSettings settings;
    settings.setValue("window/geometry", saveGeometry());
    settings.setValue("window/splitter", splitter_->saveState());
    host_->stop();
    QMainWindow::closeEvent(e);
}

}  // namespace moeui
