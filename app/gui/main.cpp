// moestudio: the desktop app. The conversations live in the user's data folder; the built-in
// demo model (installed beside the app, or the build's) is loaded on the first start.
//   moestudio [MODEL] [--theme system|light|dark]
//   moestudio --screenshot FILE.png --prompt TEXT [--theme dark] [--view chat|model-map|profiler
//       |wizard|field-map|estimate|monitor|adapter-chat]
//       (docs: answers TEXT with the loaded model, saves the window — or the model map, or the
//       profiler with the answer's capture, or the fine-tune wizard's dataset or review page,
//       the monitor after a short run, or that run's adapter chat — and quits)
#include <QApplication>
#include <QComboBox>
#include <QCommandLineParser>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QIcon>
#include <QJsonDocument>
#include <QJsonObject>
#include <QPalette>
#include <QPlainTextEdit>
#include <QPointer>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QStandardPaths>
#include <QStyleFactory>
#include <QTableWidget>
#include <QTimer>

#include <cstdio>

#include "main_window.h"
#ifdef MOE_HAVE_CHARTS
#include "adapter_chat_dialog.h"
#include "field_map_editor.h"
#include "finetune_wizard.h"
#include "training_monitor.h"
#endif
#include "model_map.h"
#include "profiler_window.h"

namespace {

QString find_demo_model() {
    const QString exe_dir = QCoreApplication::applicationDirPath();
    for (const QString& candidate :
         {exe_dir + "/../share/moestudio/demo-model", exe_dir + "/../../demo-model",
          QString(MOE_BUILD_DEMO_MODEL)}) {
        if (QFileInfo::exists(candidate + "/config.json")) return QDir(candidate).absolutePath();
    }
    return {};
}

void apply_theme(const QString& theme) {
    // "system": dark when the desktop's palette is dark (Qt 6.4 has no colour-scheme hint;
    // the platform theme's window colour tells).
    const bool system_dark = QApplication::palette().color(QPalette::Window).lightness() < 128;
    QApplication::setStyle(QStyleFactory::create("Fusion"));
    if (theme != "dark" && !(theme == "system" && system_dark)) return;
    QPalette p;
    const QColor base(37, 37, 38), window(45, 45, 48), text(220, 220, 220), accent(0, 122, 204);
    p.setColor(QPalette::Window, window);
    p.setColor(QPalette::WindowText, text);
    p.setColor(QPalette::Base, base);
    p.setColor(QPalette::AlternateBase, window);
    p.setColor(QPalette::Text, text);
    p.setColor(QPalette::Button, window);
    p.setColor(QPalette::ButtonText, text);
    p.setColor(QPalette::Highlight, accent);
    p.setColor(QPalette::HighlightedText, Qt::white);
    p.setColor(QPalette::Link, QColor(86, 156, 214));
    p.setColor(QPalette::PlaceholderText, QColor(140, 140, 140));
    p.setColor(QPalette::Disabled, QPalette::ButtonText, QColor(120, 120, 120));
    QApplication::setPalette(p);
}

}  // namespace

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setOrganizationName("MoE Studio");
    QApplication::setApplicationName("MoE Studio");
    // The desktop entry's id (resources/linux), so that docks group the window with its
    // launcher; the icon from the installed theme (the build tree has none: Qt's default).
    QGuiApplication::setDesktopFileName("io.moestudio.MoEStudio");
    QApplication::setWindowIcon(QIcon::fromTheme("moestudio"));
    QCommandLineParser cli;
    cli.addHelpOption();
    cli.addPositionalArgument("model", "A GGUF file or Hugging Face model folder to load.");
    cli.addOption({"theme", "system (the desktop's), light or dark.", "theme", "system"});
    cli.addOption({"screenshot", "Answer --prompt, save the window as FILE, quit.", "file"});
    cli.addOption({"prompt", "The prompt for --screenshot.", "text"});
    cli.addOption(
        {"view",
         "What --screenshot saves: chat, model-map, profiler, wizard, field-map, estimate, "
         "monitor or adapter-chat.",
         "view", "chat"});
    cli.addOption(
        {"data", "Folder for the conversations (default: the user's data folder).", "dir"});
    cli.process(app);
    apply_theme(cli.value("theme"));

    const QString data = cli.isSet("data")
                             ? cli.value("data")
                             : QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
    QDir().mkpath(data);
    moeui::MainWindowOptions o;
    o.store_path = data + "/conversations.db";
    o.demo_model = find_demo_model();
    if (!cli.positionalArguments().isEmpty()) o.initial_model = cli.positionalArguments().first();
    moeui::MainWindow w(o);
    w.show();

    if (cli.isSet("screenshot")) {
        const QString file = cli.value("screenshot"), prompt = cli.value("prompt"),
                      view = cli.value("view");
        const QStringList fine_tune = {"wizard", "field-map", "estimate", "monitor",
                                       "adapter-chat"};
        if (view != "chat" && view != "model-map" && view != "profiler" &&
            !fine_tune.contains(view)) {
            std::fprintf(stderr,
                         "--view: expected chat, model-map, profiler, wizard, field-map, estimate, "
                         "monitor or adapter-chat\n");
            return 2;
        }
#ifdef MOE_HAVE_CHARTS
        if (fine_tune.contains(view)) {
            // The fine-tune wizard on a small generated dataset (its preview), or the monitor
            // after a short run of it on the loaded model.
            QObject::connect(
                &w.host(), &moeui::EngineHost::modelLoaded, &w, [&w, file, view, data] {
                    // field-map: the same stories as JSONL under a key of their own ("story"),
                    // which the dataset page maps to the text.
                    const bool mapped = view == "field-map";
                    const QString dataset =
                        data + (mapped ? "/screenshot-dataset.jsonl" : "/screenshot-dataset.txt");
                    QFile f(dataset);
                    if (f.open(QIODevice::WriteOnly | QIODevice::Truncate)) {
                        // Plain text trains any model (the tiny story models have no chat
                        // template).
                        for (int i = 0; i < 24; ++i) {
                            const QString story =
                                QString(
                                    "Once upon a time, a little dragon named Zara found %1 "
                                    "shiny stones by the river. She was very happy.")
                                    .arg(i + 2);
                            f.write(mapped ? QJsonDocument(QJsonObject{{"story", story}})
                                                     .toJson(QJsonDocument::Compact) +
                                                 "\n"
                                           : (story + "\n").toUtf8());
                        }
                    }
                    f.close();
                    auto* wizard = static_cast<moeui::FinetuneWizard*>(w.showFinetune());
                    moe::FinetuneSpec spec = wizard->spec();
                    spec.model = QSettings().value("model/last").toString().toStdString();
                    spec.data = {dataset.toStdString()};
                    spec.format = mapped ? "auto" : "text";
                    spec.packing = true;
                    spec.out = (data + "/screenshot-run").toStdString();
                    spec.cutoff = 128;
                    spec.steps = 24;
                    spec.lr = 1e-3;
                    wizard->setSpec(spec);
                    wizard->resize(900, 640);
                    wizard->next();  // the dataset page
                    wizard->checkDataset();
                    if (mapped) {  // refused, so the mapping shows: the text is "story"
                        if (QComboBox* box = wizard->fieldMap()->box("text"))
                            box->setCurrentText("story");
                        wizard->checkDataset();
                    }
                    if (view == "wizard" || view == "estimate" || mapped) {
                        // The review page: the estimate (the model is measured off the GUI
                        // thread, well within the wait) and the equivalent command.
                        if (view == "estimate")
                            for (int page = 0; page < 3; ++page) wizard->next();
                        QTimer::singleShot(1500, &w, [wizard, file] {
                            wizard->grab().save(file);
                            QApplication::quit();
                        });
                        return;
                    }
                    wizard->accept();  // starts the run in the monitor
                    auto* poll = new QTimer(&w);
                    QObject::connect(poll, &QTimer::timeout, &w, [&w, file, poll, view] {
                        auto* m = w.findChild<moeui::TrainingMonitor*>();
                        if (!m || (m->state() != "finished" && m->state() != "failed")) return;
                        poll->stop();
                        m->resize(1100, 760);
                        if (view == "adapter-chat") {
                            // The finished run's adapter against its base model (A/B).
                            m->runsTable()->setCurrentCell(0, 0);
                            m->chatWithSelected();
                            auto* chat = w.findChild<moeui::AdapterChatDialog*>();
                            if (!chat) QApplication::exit(1);
                            QObject::connect(chat, &moeui::AdapterChatDialog::answered, &w,
                                             [chat, file] {
                                                 QTimer::singleShot(500, chat, [chat, file] {
                                                     chat->grab().save(file);
                                                     QApplication::quit();
                                                 });
                                             });
                            chat->maxTokensSpin->setValue(48);
                            chat->ask("Once upon a time, a little dragon");
                            return;
                        }
                        QTimer::singleShot(1500, &w, [m, file] {
                            m->grab().save(file);
                            QApplication::quit();
                        });
                    });
                    poll->start(200);
                });
            QTimer::singleShot(300000, &app, [] { QApplication::exit(1); });
            return app.exec();
        }
#endif
        // The profiler captures the answer: live before the prompt goes out.
        QPointer<moeui::ProfilerWindow> profiler;
        QObject::connect(&w.host(), &moeui::EngineHost::modelLoaded, &w,
                         [&w, prompt, view, &profiler] {
                             if (view == "profiler") {
                                 profiler = w.showProfiler();
                                 profiler->setLive(true);
                             }
                             w.findChild<QPlainTextEdit*>("promptInput")->setPlainText(prompt);
                             QTimer::singleShot(100, &w, [&w] { w.sendInput(); });
                         });
        QObject::connect(&w.host(), &moeui::EngineHost::generationFinished, &w,
                         [&w, file, view, &profiler] {
                             QWidget* target = &w;
                             if (view == "model-map") {
                                 QWidget* map = w.showModelMap();
                                 map->resize(1100, 700);
                                 target = map;
                             } else if (view == "profiler" && profiler) {
                                 moeui::ProfilerWindow* p = profiler;
                                 p->refresh();
                                 p->freeze();
                                 p->resize(1200, 700);
                                 p->fit();
                                 target = p;
                             }
                             // Time for the window to lay out and (the profiler) render a few
                             // frames.
                             QTimer::singleShot(1500, &w, [target, file] {
                                 target->grab().save(file);
                                 QApplication::quit();
                             });
                         });
        QTimer::singleShot(120000, &app, [] { QApplication::exit(1); });
    }
    return app.exec();
}
