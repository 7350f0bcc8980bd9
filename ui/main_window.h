#pragma once
// The main window: conversations on the left, the chat on the right (transcript, input, send /
// stop / regenerate), the loaded model and the engine's state in the status bar. Everything it
// asks of the engine goes through EngineHost and comes back as signals.
#include <QMainWindow>
#include <QString>

#include <vector>

#include "api/system_status.h"
#include "engine_host.h"

class QLabel;
class QLineEdit;
class QListWidget;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QSplitter;
class QWizard;

namespace moeui {

class ChatView;
class HardwareDialog;
class ModelLibraryDialog;
class ModelMapDialog;
class ProfilerWindow;

struct MainWindowOptions {
    QString store_path;     // the conversation database
    QString demo_model;     // the built-in demo model's folder ("" = none)
    QString initial_model;  // loaded at start instead of the last one (command line)
};

class MainWindow : public QMainWindow {
    Q_OBJECT

  public:
    explicit MainWindow(const MainWindowOptions& options, QWidget* parent = nullptr);
    ~MainWindow() override;

    EngineHost& host() { return *host_; }
    qint64 current_conversation() const { return current_; }
    // The furthest load progress seen (permille), for tests.
    int max_load_progress() const { return max_progress_; }
    // The expert placement preset models load with: "auto", "all" (experts on the CPU), "none".
    QString placement_preset() const;

  public slots:
    void openModel(const QString& path);
    void newChat();
    void sendInput();
    void stopGeneration();
    void regenerateLast();
    // Rewrites the last question of the chat on screen as a new branch and answers it.
    void editLastQuestion(const QString& text);
    // Full-text search over every chat; an empty query shows the chat list again.
    void searchFor(const QString& query);
    void exportCurrent(const QString& path, bool json);
    void importFile(const QString& path);
    // Opens the model library (non-modal; it scans on its own thread).
    ModelLibraryDialog* showLibrary();
    // The preflight page (also shown once on the first start).
    HardwareDialog* showHardware();
    // Where the model's layers and experts live and how the experts are used.
    ModelMapDialog* showModelMap();
    // The engine's timeline (View > Profiler): live while chatting, frozen, exported.
    ProfilerWindow* showProfiler();
    // Tools > Fine-tune... (only with QtCharts): the wizard, whose Finish starts the run in
    // the monitor window. Returns the wizard (null without QtCharts).
    QWizard* showFinetune();
    // The training monitor and runs history (Tools > Training runs): resume a stopped run.
    QWidget* showTrainingMonitor();

  protected:
    void closeEvent(QCloseEvent* e) override;

  private:
    void build_ui();
    void build_menus();
    void select_conversation(qint64 id);
    void update_buttons();
    void update_memory();
    double gpu_budget() const;

    MainWindowOptions options_;
    EngineHost* host_ = nullptr;
    QListWidget* conversations_ = nullptr;
    QLineEdit* search_ = nullptr;
    QString search_query_;  // non-empty: the list shows search results
    ChatView* chat_ = nullptr;
    QPlainTextEdit* input_ = nullptr;
    QPushButton *send_ = nullptr, *stop_ = nullptr, *regenerate_ = nullptr;
    QLabel* model_label_ = nullptr;
    QLabel* memory_label_ = nullptr;
    QProgressBar* load_bar_ = nullptr;
    std::vector<moe::GpuStatus> gpus_;
    QSplitter* splitter_ = nullptr;
    qint64 current_ = 0;
    qint64 deleted_ = 0;  // the last deleted conversation (Undo)
    QString loading_;     // the model asked for last
    int max_progress_ = 0;
    QWidget* monitor_ = nullptr;  // the training monitor, made on first use
};

}  // namespace moeui
