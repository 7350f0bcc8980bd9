// The desktop app's main window, driven like a user would (offscreen platform): the demo
// model loads, a prompt streams an answer into the view, Stop ends an answer mid-way,
// Regenerate adds a second branch that the ‹ › switcher walks, editing a question adds a
// branch, search finds text, export writes Markdown and JSON, and after closing and opening
// the window again the conversations, branches and chat settings are back (and an import adds
// the exported chat). The placement editor: presets fill a budget, the budget bar refuses a
// placement over it, undo/redo walk the edits, profiles persist across a restart, and the
// map stays usable at Kimi-K2's 61 x 384 experts (zoom, scroll, tooltips). Its predicted
// speed: Calibrate measures the rates, the prediction follows the edits (and says why a GPU
// split needs GPU figures), the rates come back after a restart; Export gives llama.cpp's
// -ot options and sglang-kt's with their experts file.
#include <QClipboard>
#include <QFileInfo>
#include <QGuiApplication>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QProcess>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QScrollBar>
#include <QSettings>
#include <QSignalSpy>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QToolButton>
#include <QToolTip>
#include <QUndoStack>
#include <QWheelEvent>
#include <QtTest>
#include <nlohmann/json.hpp>

#include "budget_bar.h"
#include "chat_view.h"
#include "hardware_dialog.h"
#include "hybrid/cost_model.h"
#include "hybrid/placement.h"
#include "main_window.h"
#include "model_library_dialog.h"
#include "model_map.h"
#include "placement_export_dialog.h"
#include "speed_panel.h"
#include "test_paths.h"

using moeui::ChatView;
using moeui::MainWindow;

class TestMainWindow : public QObject {
    Q_OBJECT

    QTemporaryDir tmp_;
    QString demo_;

    static moeui::MainWindowOptions options(const QTemporaryDir& tmp, const QString& demo) {
        moeui::MainWindowOptions o;
        o.store_path = tmp.filePath("conversations.db");
        o.demo_model = demo;
        return o;
    }

    static void type_and_send(MainWindow& w, const QString& text) {
        auto* input = w.findChild<QPlainTextEdit*>("promptInput");
        input->setPlainText(text);
        QTest::mouseClick(w.findChild<QPushButton*>("sendButton"), Qt::LeftButton);
    }

  private slots:
    void initTestCase() {
        QCoreApplication::setOrganizationName("MoE Studio Tests");
        QCoreApplication::setApplicationName("tst_main_window");
        QSettings::setPath(QSettings::NativeFormat, QSettings::UserScope,
                           tmp_.filePath("settings"));
        QSettings().clear();
        QSettings().setValue("preflight/shown", true);  // opened by the test itself below
        demo_ = tmp_.filePath("demo");
        const QString why = moetest::make_demo_model(demo_);
        if (why.contains("MOE_CLI")) QSKIP(qPrintable(why));
        QVERIFY2(why.isEmpty(), qPrintable(why));
    }

    void chatStopRegenerateAndRestart() {
        qint64 conversation = 0;
        QString first_answer;
        {
            MainWindow w(options(tmp_, demo_));
            w.show();
            auto* label = w.findChild<QLabel*>("modelLabel");
            QTRY_VERIFY_WITH_TIMEOUT(label->text().contains("qwen3_moe"), 60000);
            QCOMPARE(w.max_load_progress(), 1000);  // the progress bar went all the way
            QVERIFY(!w.findChild<QProgressBar*>("loadProgress")->isVisible());
            auto* chat = w.findChild<ChatView*>("chatView");
            auto* send = w.findChild<QPushButton*>("sendButton");
            QTRY_VERIFY(send->isEnabled());

            // A prompt: the question shows at once, the answer streams in, stats under it.
            type_and_send(w, "Once upon a time");
            QTRY_VERIFY_WITH_TIMEOUT(chat->transcript().contains("Once upon a time"), 10000);
            QTRY_VERIFY_WITH_TIMEOUT(!w.host().busy() && chat->last_answer() != 0, 60000);
            QVERIFY(chat->transcript().contains("tok/s"));
            QVERIFY(chat->transcript().contains("first token"));
            QVERIFY(chat->transcript().contains("prompt"));
            conversation = w.current_conversation();
            QVERIFY(conversation != 0);
            auto* list = w.findChild<QListWidget*>("conversationList");
            QTRY_COMPARE(list->count(), 1);
            QTRY_COMPARE(list->item(0)->text(), QString("Once upon a time"));
            first_answer = chat->messages().last().content;

            // Stop mid-answer: a long answer is cut, what was said is kept.
            moe::ChatSettings long_answer;
            long_answer.max_new_tokens = 100000;
            w.host().set_chat_settings(long_answer);
            type_and_send(w, "Tell me everything");
            QTRY_VERIFY_WITH_TIMEOUT(w.host().busy(), 10000);
            QTRY_VERIFY_WITH_TIMEOUT(w.findChild<QPushButton*>("stopButton")->isEnabled(), 10000);
            QTest::qWait(200);
            QTest::mouseClick(w.findChild<QPushButton*>("stopButton"), Qt::LeftButton);
            QTRY_VERIFY_WITH_TIMEOUT(!w.host().busy(), 30000);
            QTRY_VERIFY(chat->messages().size() == 4);
            QVERIFY(chat->messages().last().stats.contains("stopped") ||
                    chat->messages().last().stats.contains("tokens"));

            // Regenerate: a second answer, shown as branch 2/2; ‹ goes back to 1/2.
            moe::ChatSettings short_answer;
            short_answer.max_new_tokens = 8;
            w.host().set_chat_settings(short_answer);
            QTRY_VERIFY(w.findChild<QPushButton*>("regenerateButton")->isEnabled());
            QTest::mouseClick(w.findChild<QPushButton*>("regenerateButton"), Qt::LeftButton);
            QTRY_VERIFY_WITH_TIMEOUT(!w.host().busy() && chat->messages().size() == 4 &&
                                         chat->messages().last().sibling_count == 2,
                                     30000);
            QCOMPARE(chat->messages().last().sibling_index, 1);
            emit chat->branchRequested(chat->messages().last().id, -1);
            QTRY_COMPARE(chat->messages().last().sibling_index, 0);

            // The model map: every layer, every expert, and the routing counted so far.
            moeui::ModelMapDialog* map = w.showModelMap();
            QTRY_VERIFY(!map->view()->data().layers.isEmpty());
            const moeui::ModelMapData& mm = map->view()->data();
            QCOMPARE(mm.layers.size(), 4);                 // the demo: 4 MoE layers
            QCOMPARE(mm.layers[0].expert_gpu.size(), 16);  // of 16 experts
            QVERIFY(mm.routed > 0);
            QVERIFY(!mm.layers[0].attention_gpu);  // no GPU here: everything on the CPU
            const QString cell = map->view()->describe(QPoint(54 + 2 * 12 + 12 + 2, 6 + 2));
            QVERIFY2(cell.contains("expert 0") && cell.contains("chosen"), qPrintable(cell));
            // Editing: a click moves expert 0 of layer 0 to the GPU; dragging over a rectangle
            // moves a block; the placement saves as a file the CLI reads; Apply on this
            // CPU-only model says why it cannot move experts, without changing anything.
            QTest::mouseClick(map->view(), Qt::LeftButton, {}, QPoint(54 + 2 * 12 + 12 + 2, 8));
            QVERIFY(map->view()->data().layers[0].expert_gpu[0]);
            QTest::mousePress(map->view(), Qt::LeftButton, {}, QPoint(54 + 3 * 12 + 12 + 2, 8));
            QTest::mouseMove(map->view(), QPoint(54 + 5 * 12 + 12 + 2, 12 + 8));
            QTest::mouseRelease(map->view(), Qt::LeftButton, {}, QPoint(54 + 5 * 12 + 12 + 2, 20));
            for (int l : {0, 1})
                for (int e : {1, 2, 3}) QVERIFY(map->view()->data().layers[l].expert_gpu[e]);
            QVERIFY(!map->view()->data().layers[1].expert_gpu[0]);
            QVERIFY(map->findChild<QLabel*>()->text().contains("7 of 64 routed experts"));
            QVERIFY(map->findChild<QLabel*>()->text().contains("GPU weights"));
            QVERIFY(map->gpu_bytes() > 0);  // the 7 experts' weights
            const QString placement_file = tmp_.filePath("edited.json");
            QVERIFY(map->save_placement(placement_file));
            const moe::Placement edited = moe::Placement::load(placement_file.toStdString());
            QCOMPARE(edited.gpu_expert_count(), int64_t(7));
            QTest::mouseClick(map->findChild<QPushButton*>("applyPlacement"), Qt::LeftButton);
            QTRY_VERIFY(map->status()->text().contains("CPU only"));
            map->close();

            // Edit the last question: a sibling question with its own answer.
            w.editLastQuestion("Tell me less");
            QTRY_VERIFY_WITH_TIMEOUT(!w.host().busy() && chat->messages().size() == 4 &&
                                         chat->messages()[2].content == "Tell me less",
                                     30000);
            QCOMPARE(chat->messages()[2].sibling_count, 2);

            // Search finds text in any chat; clearing it brings the chat list back.
            auto* search = w.findChild<QLineEdit*>("searchBox");
            search->setText("upon");
            QTRY_VERIFY(list->count() >= 1 && list->item(0)->text().contains("[upon]"));
            search->setText("zzzzqqq");
            QTRY_COMPARE(list->item(0)->text(), QString("Nothing found"));
            search->clear();
            QTRY_COMPARE(list->item(0)->text(), QString("Once upon a time"));

            // Export writes the file; settings are stored with the chat.
            const QString md = tmp_.filePath("chat.md"), js = tmp_.filePath("chat.json");
            QSignalSpy saved(&w.host(), &moeui::EngineHost::exported);
            w.exportCurrent(md, false);
            w.exportCurrent(js, true);
            QTRY_COMPARE(saved.count(), 2);
            QFile f(md);
            QVERIFY(f.open(QIODevice::ReadOnly));
            QVERIFY(f.readAll().startsWith("# Once upon a time"));
            QVERIFY(QFileInfo(js).size() > 100);
            w.host().saveSettings(conversation, R"({"system":"Be brief.","temperature":0.5})");

            // The placement preset is a remembered setting (File > Expert placement).
            QCOMPARE(w.placement_preset(), QString("auto"));
            QAction* all_on_cpu = nullptr;
            for (QAction* a : w.findChildren<QAction*>())
                if (a->data().toString() == "all") all_on_cpu = a;
            QVERIFY(all_on_cpu);
            all_on_cpu->trigger();
            QCOMPARE(w.placement_preset(), QString("all"));
            w.close();
        }
        // Open the window again: the conversation, its branch and the model are back.
        MainWindow w(options(tmp_, demo_));
        w.show();
        auto* list = w.findChild<QListWidget*>("conversationList");
        QTRY_COMPARE(list->count(), 1);
        list->setCurrentRow(0);
        auto* chat = w.findChild<ChatView*>("chatView");
        QTRY_VERIFY(chat->messages().size() == 4);
        QCOMPARE(chat->messages().front().content, QString("Once upon a time"));
        QCOMPARE(chat->messages()[1].content, first_answer);
        QCOMPARE(chat->messages()[2].content, QString("Tell me less"));  // the edited branch
        QCOMPARE(chat->messages()[2].sibling_count, 2);
        QTRY_VERIFY_WITH_TIMEOUT(w.findChild<QLabel*>("modelLabel")->text().contains("qwen3_moe"),
                                 60000);
        // The chat's own settings and the app's settings are back too.
        QSignalSpy settings(&w.host(), &moeui::EngineHost::settingsLoaded);
        w.host().loadSettings(conversation);
        QTRY_COMPARE(settings.count(), 1);
        const QString json = settings.at(0).at(1).toString();
        QVERIFY2(json.contains("Be brief.") && json.contains("0.5"), qPrintable(json));
        QCOMPARE(w.placement_preset(), QString("all"));
    }

    // The placement editor on the demo model (4 MoE layers x 16 equal experts): presets from
    // the planner's strategies fill the budget, a drag past it is refused with the reason,
    // Ctrl+Z / Ctrl+Shift+Z walk the steps, and named profiles come back after a restart.
    void placementEditorPresetsUndoAndProfiles() {
        QTemporaryDir tmp;  // a database of its own: no profiles yet
        // Layer l's experts on the GPU, as a list.
        auto gpu_of = [](moeui::ModelMapDialog* map, int layer) {
            QList<int> on;
            const auto& row = map->view()->data().layers[layer].expert_gpu;
            for (int e = 0; e < row.size(); ++e)
                if (row[e]) on << e;
            return on;
        };
        const QList<int> first8 = {0, 1, 2, 3, 4, 5, 6, 7};
        {
            MainWindow w(options(tmp, demo_));
            w.show();
            QTRY_VERIFY_WITH_TIMEOUT(
                w.findChild<QLabel*>("modelLabel")->text().contains("qwen3_moe"), 60000);
            moeui::ModelMapDialog* map = w.showModelMap();
            QTRY_VERIFY(!map->view()->data().layers.isEmpty());
            const moeui::ModelMapData& d = map->view()->data();
            const quint64 expert = d.layers[0].expert_bytes[0];
            QVERIFY(expert > 0);
            for (const auto& l : d.layers)
                for (quint64 b : l.expert_bytes) QCOMPARE(b, expert);
            auto* bar = map->budget_bar();
            auto* apply = map->findChild<QPushButton*>("applyPlacement");
            QUndoStack* undo = map->undo_stack();

            // A budget of the fixed weights and 8 experts; each preset is one undoable step.
            map->set_budget(d.fixed_gpu_bytes + 8 * expert);
            QCOMPARE(bar->figures().budget, d.fixed_gpu_bytes + 8 * expert);
            map->request_preset("front");  // whole layers from the first
            QTRY_COMPARE(undo->count(), 1);
            QCOMPARE(gpu_of(map, 0), first8);
            QVERIFY(gpu_of(map, 1).isEmpty() && gpu_of(map, 3).isEmpty());
            QCOMPARE(map->gpu_bytes(), d.fixed_gpu_bytes + 8 * expert);
            QCOMPARE(bar->gpu_bytes(), map->gpu_bytes());
            QVERIFY(bar->fits() && apply->isEnabled());
            map->request_preset("uniform");  // the same number in every layer
            QTRY_COMPARE(undo->count(), 2);
            for (int l = 0; l < 4; ++l) QCOMPARE(gpu_of(map, l), (QList<int>{0, 1}));
            map->request_preset("back");  // whole layers from the last
            QTRY_COMPARE(undo->count(), 3);
            QCOMPARE(gpu_of(map, 3), first8);
            QVERIFY(gpu_of(map, 0).isEmpty());
            // No tokens routed in this window yet: frequency says why and changes nothing.
            map->request_preset("frequency");
            QTRY_VERIFY(map->status()->text().contains("telemetry"));
            QCOMPARE(undo->count(), 3);

            // Dragging 4 more experts to the GPU goes past the budget: the bar (updated while
            // dragging) refuses it with the reason, Apply is disabled and says why.
            const QPoint a = map->view()->expert_center(0, 0), b = map->view()->expert_center(0, 3);
            QTest::mousePress(map->view(), Qt::LeftButton, {}, a);
            QTest::mouseMove(map->view(), b);
            QVERIFY(!bar->fits());  // live, before the button is released
            QTest::mouseRelease(map->view(), Qt::LeftButton, {}, b);
            QCOMPARE(undo->count(), 4);
            QCOMPARE(map->gpu_bytes(), d.fixed_gpu_bytes + 12 * expert);
            QVERIFY2(bar->reason().contains("Does not fit") && bar->reason().contains("over"),
                     qPrintable(bar->reason()));
            QVERIFY(bar->cpu_line().contains("Does not fit"));
            QVERIFY(!apply->isEnabled());
            QVERIFY2(apply->toolTip().contains("Does not fit"), qPrintable(apply->toolTip()));

            // Ctrl+Z undoes the drag (fits again), then the back preset; Ctrl+Shift+Z redoes.
            map->activateWindow();
            QVERIFY(QTest::qWaitForWindowActive(map));
            QTest::keyClick(map->view(), Qt::Key_Z, Qt::ControlModifier);
            QCOMPARE(undo->index(), 3);
            QCOMPARE(gpu_of(map, 0), QList<int>{});
            QCOMPARE(gpu_of(map, 3), first8);
            QVERIFY(bar->fits() && apply->isEnabled());
            QTest::keyClick(map->view(), Qt::Key_Z, Qt::ControlModifier);
            QCOMPARE(gpu_of(map, 3), (QList<int>{0, 1}));  // the uniform preset again
            QTest::keyClick(map->view(), Qt::Key_Z, Qt::ControlModifier | Qt::ShiftModifier);
            QCOMPARE(undo->index(), 3);
            QCOMPARE(gpu_of(map, 3), first8);
            QCOMPARE(gpu_of(map, 0), QList<int>{});

            // Named profiles of this model: save two, load one (one undoable step), delete one.
            map->save_profile("back eight");
            QTRY_COMPARE(map->profiles(), QStringList{"back eight"});
            map->request_preset("uniform");
            QTRY_COMPARE(gpu_of(map, 0), (QList<int>{0, 1}));
            map->save_profile("uniform two");
            QTRY_COMPARE(map->profiles(), (QStringList{"back eight", "uniform two"}));
            const int steps = undo->count();
            map->load_profile("back eight");
            QTRY_COMPARE(undo->count(), steps + 1);
            QCOMPARE(gpu_of(map, 3), first8);
            QCOMPARE(gpu_of(map, 0), QList<int>{});
            undo->undo();
            QCOMPARE(gpu_of(map, 0), (QList<int>{0, 1}));
            map->delete_profile("uniform two");
            QTRY_COMPARE(map->profiles(), QStringList{"back eight"});
            map->close();
        }
        // After a restart the profile is still there for this model and loads.
        MainWindow w(options(tmp, demo_));
        w.show();
        QTRY_VERIFY_WITH_TIMEOUT(w.findChild<QLabel*>("modelLabel")->text().contains("qwen3_moe"),
                                 60000);
        moeui::ModelMapDialog* map = w.showModelMap();
        QTRY_COMPARE(map->profiles(), QStringList{"back eight"});
        map->load_profile("back eight");
        QTRY_COMPARE(gpu_of(map, 3), first8);
        QCOMPARE(gpu_of(map, 0), QList<int>{});
        QCOMPARE(map->undo_stack()->count(), 1);
    }

    // The editor's predicted speed on the CPU-only demo model: nothing before calibrating,
    // figures after; moving an expert to the GPU needs GPU figures (the message says so) and
    // undoing it brings the same figures back. After a restart the rates are read again; with
    // GPU figures in them, the prediction's GPU share follows a click and a drag (debounced:
    // the figures shown are those of the edit as released). Export: llama.cpp and sglang-kt.
    void placementEditorPredictsAndExports() {
        QTemporaryDir tmp;  // no machine rates yet
        const QString rates_file = tmp.filePath("machine_rates.json");
        {
            MainWindow w(options(tmp, demo_));
            w.show();
            QTRY_VERIFY_WITH_TIMEOUT(
                w.findChild<QLabel*>("modelLabel")->text().contains("qwen3_moe"), 60000);
            moeui::ModelMapDialog* map = w.showModelMap();
            QTRY_VERIFY(!map->view()->data().layers.isEmpty());
            moeui::SpeedPanel* speed = map->speed_panel();
            QTRY_VERIFY2(speed->prediction_text().contains("calibrate this machine first"),
                         qPrintable(speed->prediction_text()));

            QTest::mouseClick(speed->calibrate_button(), Qt::LeftButton);
            QVERIFY(!speed->calibrate_button()->isEnabled());  // one calibration at a time
            QTRY_VERIFY_WITH_TIMEOUT(speed->calibration_label()->text().startsWith("Calibrated:"),
                                     60000);
            QVERIFY(speed->calibrate_button()->isEnabled());
            QVERIFY(QFileInfo::exists(rates_file));
            QTRY_VERIFY2(speed->prediction_text().contains("decode") &&
                             speed->prediction_text().contains("tok/s"),
                         qPrintable(speed->prediction_text()));
            const QString cpu_only = speed->prediction_text();
            QVERIFY(cpu_only.contains("0 % of expert use on the GPU"));
            QVERIFY(speed->measured_text().contains("no answer"));
            // Calibrating ran decode steps, but the telemetry is the user's: still nothing.
            QSignalSpy refreshed(&w.host(), &moeui::EngineHost::modelMapReady);
            w.host().requestModelMap();
            QTRY_COMPARE(refreshed.count(), 1);
            QCOMPARE(map->view()->data().routed, quint64(0));

            // Expert 0 of layer 0 to the GPU: these rates have no GPU figures.
            QTest::mouseClick(map->view(), Qt::LeftButton, {}, map->view()->expert_center(0, 0));
            QTRY_VERIFY2(speed->prediction_text().contains("no GPU figures"),
                         qPrintable(speed->prediction_text()));
            map->undo_stack()->undo();
            QTRY_COMPARE(speed->prediction_text(), cpu_only);
            map->close();
        }
        // The rates as a GPU machine's calibration would write them.
        moe::MachineRates rates = moe::MachineRates::load(rates_file.toStdString());
        rates.gpu_layer_s = 1e-4;
        rates.gpu_expert_bytes_per_s = 1e12;
        rates.gpu_token_s = 1e-3;
        rates.gpu_flops = 1e13;
        rates.save(rates_file.toStdString());

        MainWindow w(options(tmp, demo_));
        w.show();
        QTRY_VERIFY_WITH_TIMEOUT(w.findChild<QLabel*>("modelLabel")->text().contains("qwen3_moe"),
                                 60000);
        moeui::ModelMapDialog* map = w.showModelMap();
        QTRY_VERIFY(!map->view()->data().layers.isEmpty());
        moeui::SpeedPanel* speed = map->speed_panel();
        QTRY_VERIFY2(speed->prediction_text().contains("0 % of expert use on the GPU"),
                     qPrintable(speed->prediction_text()));
        const QString before = speed->prediction_text();
        // 1 of 64 equally likely experts; then a drag over 4 x 2 more: 9 of 64 (14 %).
        QTest::mouseClick(map->view(), Qt::LeftButton, {}, map->view()->expert_center(0, 0));
        QTRY_VERIFY2(speed->prediction_text().contains(" 2 % of expert use on the GPU"),
                     qPrintable(speed->prediction_text()));
        QVERIFY(speed->prediction_text().contains("VRAM"));
        QVERIFY(speed->prediction_text() != before);
        QTest::mousePress(map->view(), Qt::LeftButton, {}, map->view()->expert_center(1, 0));
        for (int e = 1; e <= 3; ++e)
            QTest::mouseMove(map->view(), map->view()->expert_center(2, e));
        QTest::mouseRelease(map->view(), Qt::LeftButton, {}, map->view()->expert_center(2, 3));
        QTRY_VERIFY2(speed->prediction_text().contains(" 14 % of expert use on the GPU"),
                     qPrintable(speed->prediction_text()));

        // Export: llama.cpp's tensor overrides with the note, copied and saved; sglang-kt's
        // options with the per-layer GPU experts beside them.
        moeui::PlacementExportDialog* ex = map->export_placement();
        QVERIFY(ex);
        QVERIFY2(ex->options().startsWith("-ngl 999") && ex->options().contains("-ot"),
                 qPrintable(ex->options()));
        QVERIFY(ex->note().contains("llama.cpp"));
        ex->copy();
        QCOMPARE(QGuiApplication::clipboard()->text(), ex->options());
        const QString llama = tmp.filePath("llama.txt");
        QVERIFY(ex->save(llama));
        QFile f(llama);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QVERIFY(f.readAll().contains("-ot \"blk\\."));
        ex->set_format(moeui::PlacementExportDialog::SglangKt);
        QVERIFY2(ex->options().contains("--kt-num-gpu-experts 2"), qPrintable(ex->options()));
        QVERIFY(ex->options().contains("--kt-expert-placement-strategy uniform"));  // no telemetry
        const QString kt = tmp.filePath("kt.txt");
        QVERIFY(ex->save(kt));
        QFile experts(moeui::PlacementExportDialog::experts_path(kt));
        QVERIFY(experts.open(QIODevice::ReadOnly));
        const auto j = nlohmann::json::parse(experts.readAll().toStdString());
        QCOMPARE(j["gpu_experts_per_layer"].size(), size_t(4));
        QCOMPARE(j["gpu_experts_per_layer"][0].size(), size_t(1));  // expert 0
        QCOMPARE(j["gpu_experts_per_layer"][2].size(), size_t(4));  // 0..3
    }

    // Kimi-K2's shape, 61 layers x 384 experts: the map opens scrollable, zooms with the
    // buttons and Ctrl+wheel (clamped), hit-tests every cell at every zoom, and its tooltips
    // name layer, expert, device and count (or say there is no telemetry).
    void modelMapAtKimiK2Scale() {
        moeui::ModelMapData d;
        d.title = "kimi-k2 · 61 layers";
        for (int l = 0; l < 61; ++l) {
            moeui::LayerMapRow row;
            for (int e = 0; e < 384; ++e) {
                row.expert_gpu << (e % 7 == 0);
                row.expert_count << quint64(l * 1000 + e);
                row.expert_bytes << quint64(44) * 1024 * 1024;
            }
            d.layers << row;
            d.routed += 1;
        }
        moeui::ModelMapDialog map;
        map.set_data(d);
        map.show();
        QVERIFY(QTest::qWaitForWindowExposed(&map));
        moeui::ModelMapView* v = map.view();
        QCOMPARE(v->cell_size(), 6);
        QVERIFY(map.scroll_area()->horizontalScrollBar()->maximum() > 0);  // wider than shown
        QString t = v->describe(v->expert_center(60, 383));
        QVERIFY2(t.contains("layer 60, expert 383: on the CPU, chosen 60383 times"), qPrintable(t));
        t = v->describe(v->expert_center(60, 378));
        QVERIFY2(t.contains("expert 378: on the GPU"), qPrintable(t));
        QVERIFY(v->describe(v->expert_center(0, 0) + QPoint(-100, 0)).isEmpty() ||
                v->describe(v->expert_center(0, 0) + QPoint(-100, 0)).contains("layer 0:"));

        // The + button, then Ctrl+wheel in; the view grows with its cells.
        QTest::mouseClick(map.findChild<QToolButton*>("zoomInButton"), Qt::LeftButton);
        QCOMPARE(v->cell_size(), 8);
        QCOMPARE(v->size(), v->sizeHint());
        auto wheel = [v](int dy, Qt::KeyboardModifiers mods) {
            const QPointF at = v->expert_center(30, 200);
            QWheelEvent e(at, v->mapToGlobal(at), QPoint(), QPoint(0, dy), Qt::NoButton, mods,
                          Qt::NoScrollPhase, false);
            QApplication::sendEvent(v, &e);
        };
        wheel(120, Qt::ControlModifier);
        QCOMPARE(v->cell_size(), 10);
        wheel(120, Qt::NoModifier);  // a plain wheel scrolls, it does not zoom
        QCOMPARE(v->cell_size(), 10);
        t = v->describe(v->expert_center(30, 200));
        QVERIFY2(t.contains("layer 30, expert 200"), qPrintable(t));
        for (int i = 0; i < 20; ++i) wheel(-120, Qt::ControlModifier);
        QCOMPARE(v->cell_size(), moeui::ModelMapView::kMinCell);
        t = v->describe(v->expert_center(60, 383));
        QVERIFY2(t.contains("layer 60, expert 383"), qPrintable(t));
        for (int i = 0; i < 20; ++i)
            QTest::mouseClick(map.findChild<QToolButton*>("zoomInButton"), Qt::LeftButton);
        QCOMPARE(v->cell_size(), moeui::ModelMapView::kMaxCell);
        QVERIFY(!v->grab(QRect(0, 0, 800, 600)).isNull());  // paints a window's worth

        // The tooltip itself, through the widget's ToolTip event.
        const QPoint at = v->expert_center(2, 5);
        QHelpEvent help(QEvent::ToolTip, at, v->mapToGlobal(at));
        QApplication::sendEvent(v, &help);
        QTRY_VERIFY2(QToolTip::text().contains("layer 2, expert 5"), qPrintable(QToolTip::text()));

        // No telemetry: the tooltip says so rather than showing a count of 0.
        d.routed = 0;
        for (auto& l : d.layers) l.expert_count.fill(0);
        map.set_data(d);
        t = v->describe(v->expert_center(1, 1));
        QVERIFY2(t.contains("no telemetry"), qPrintable(t));
        // No placement to apply (nothing loaded): Apply is off.
        QVERIFY(!map.findChild<QPushButton*>("applyPlacement")->isEnabled());
    }

    // The transcript: Markdown, folded thinking that a click unfolds, copy links on code.
    void chatViewRendersThinkingAndCode() {
        ChatView v;
        moeui::MessageRow q{1, "user", "Show code", {}, 0, 1};
        moeui::MessageRow a{2,
                            "assistant",
                            "<think>first check the types</think>Here:\n```\nint x = 1;\n```",
                            "3 tokens",
                            0,
                            1};
        v.set_messages({q, a});
        QVERIFY(v.transcript().contains("Thought for 4 words"));
        QVERIFY(!v.transcript().contains("check the types"));
        emit v.anchorClicked(QUrl("think:2"));
        QVERIFY(v.transcript().contains("first check the types"));
        QVERIFY(v.transcript().contains("int x = 1;"));
        emit v.anchorClicked(QUrl("copy:0"));
        QCOMPARE(QGuiApplication::clipboard()->text(), QString("int x = 1;"));
    }

    // A real trained model from ../shared (stories260K as a 4-expert Mixtral, a base model without
    // a chat template: it continues the text): loads through the File menu path and writes English.
    void fixtureModelContinuesTheStory() {
        const QString gguf =
            moetest::shared_fixtures_dir() + "/stories260K/stories260K-moe4x2-perturbed.gguf";
        if (!QFileInfo::exists(gguf)) QSKIP("../shared/fixtures/stories260K is not here");
        QTemporaryDir tmp;
        moeui::MainWindow w(options(tmp, {}));
        w.show();
        w.openModel(gguf);
        auto* label = w.findChild<QLabel*>("modelLabel");
        QTRY_VERIFY_WITH_TIMEOUT(
            label->text().contains("mixtral") && label->text().contains("4 experts"), 60000);
        QVERIFY(label->toolTip().contains("continues your text"));
        moe::ChatSettings s;
        s.sampling.greedy = true;
        s.max_new_tokens = 30;
        w.host().set_chat_settings(s);
        type_and_send(w, "Once upon a time");
        auto* chat = w.findChild<ChatView*>("chatView");
        QTRY_VERIFY_WITH_TIMEOUT(!w.host().busy() && chat->last_answer() != 0, 60000);
        const QString answer = chat->messages().last().content;
        QVERIFY2(answer.contains(" the ") || answer.contains(" a ") || answer.contains("was"),
                 qPrintable(answer));
    }
};

QTEST_MAIN(TestMainWindow)
#include "tst_main_window.moc"
