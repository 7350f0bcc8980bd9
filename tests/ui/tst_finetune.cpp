// The fine-tuning wizard and monitor (issue 10), offscreen, on hf-tiny/qwen3_moe-s1 with a
// generated tokenizer: a bad dataset shows its file and line and the wizard cannot go on (no
// run recorded); a good one previews with trained tokens marked, the review page shows the
// CLI config (saved and loaded back); the run starts in the monitor, its charts get points,
// pause holds it, resume continues, stop leaves a checkpoint, and the history resumes the
// stopped run to its end; "Chat with adapter" on the finished run answers a prompt with the
// base model and the adapter side by side without blocking the GUI. A dataset with renamed
// fields is refused until its fields are mapped on the dataset page, then previews and lands
// in the config; the pages show the estimate (fits this machine, the memory of each LoRA
// target, RAM/VRAM/time on the review page).
#include <QDir>
#include <QPushButton>
#include <QSignalSpy>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

#include "model/lora_adapter.h"
#include "test_paths.h"
#include "train_fixture.h"

#ifdef MOE_HAVE_CHARTS
#include <QCheckBox>
#include <QComboBox>
#include <QElapsedTimer>
#include <QLineEdit>
#include <QSpinBox>

#include "adapter_chat_dialog.h"
#include "engine_host.h"
#include "field_map_editor.h"
#include "finetune_wizard.h"
#include "model/model.h"
#include "store/training_runs.h"
#include "token_histogram.h"
#include "training_controller.h"
#include "training_monitor.h"
#endif

class TestFinetune : public QObject {
    Q_OBJECT

    QTemporaryDir tmp_;
    QString model_, db_;

    QString write(const QString& name, const QByteArray& bytes) {
        QFile f(tmp_.filePath(name));
        if (!f.open(QIODevice::WriteOnly)) return {};
        f.write(bytes);
        return f.fileName();
    }

  private slots:
    void initTestCase() {
#ifndef MOE_HAVE_CHARTS
        QSKIP("built without QtCharts: no fine-tuning wizard");
#else
        model_ = QString::fromStdString(moetest::make_trainable_model(
            moetest::data_dir().toStdString(), tmp_.filePath("model").toStdString()));
        db_ = tmp_.filePath("runs.db");
#endif
    }

    // The slots exist in both builds (moc sees one class); without QtCharts they skip.
    void badDatasetIsLocatedAndBlocks() {
#ifndef MOE_HAVE_CHARTS
        QSKIP("built without QtCharts");
#else
        const QString bad = write("bad.jsonl",
                                  "{\"instruction\": \"a\", \"output\": \"b\"}\n"
                                  "{\"instruction\": \"no output\"}\n");
        moeui::FinetuneWizard w(model_, db_);
        w.outEdit->setText(tmp_.filePath("bad-run"));
        w.dataEdit->setText(bad);
        w.show();
        w.next();
        QCOMPARE(w.currentId(), 1);  // the dataset page, checked on arrival
        QVERIFY2(w.datasetError().startsWith(bad + ":2:"), qPrintable(w.datasetError()));
        QVERIFY(!w.currentPage()->isComplete());
        w.next();
        QCOMPARE(w.currentId(), 1);  // cannot go on
        QVERIFY(moe::TrainingRunStore(db_.toStdString()).runs().empty());
#endif
    }

    void wizardToMonitorEndToEnd() {
#ifndef MOE_HAVE_CHARTS
        QSKIP("built without QtCharts");
#else
        const QString data =
            write("good.jsonl", QByteArray::fromStdString(moetest::alpaca_jsonl(10)));
        moeui::FinetuneWizard w(model_, db_);
        w.outEdit->setText(tmp_.filePath("run"));
        w.dataEdit->setText(data);
        w.show();
        w.next();
        QVERIFY2(w.datasetError().isEmpty(), qPrintable(w.datasetError()));
        QVERIFY(w.currentPage()->isComplete());
        QVERIFY(w.previewHtml().contains("#c8f0c8"));  // trained tokens highlighted
        // Every record in the length histogram; none longer than the default cut-off.
        int counted = 0;
        for (const int b : w.histogram()->bins()) counted += b;
        QCOMPARE(counted, 10);
        QCOMPARE(w.histogram()->over_cutoff(), 0);
        const int cutoff = w.cutoffSpin->value();
        // A cut-off one token below the longest record: that record (at least) is trimmed.
        w.cutoffSpin->setValue(int(w.histogram()->longest()) - 1);
        QVERIFY2(w.checkDataset(), qPrintable(w.datasetError()));
        QVERIFY(w.histogram()->over_cutoff() >= 1 && w.histogram()->over_cutoff() <= 10);
        w.cutoffSpin->setValue(cutoff);
        QVERIFY(w.checkDataset());
        w.back();
        w.next();  // the page checks the data again on arrival
        w.next();
        w.rankSpin->setValue(4);
        w.next();
        w.stepsSpin->setValue(40);
        w.lrSpin->setValue(0.01);
        w.next();
        QCOMPARE(w.currentId(), 4);
        QVERIFY(w.reviewText().startsWith("moestudio-cli train " + model_));
        QVERIFY(w.reviewText().contains("--rank 4"));
        // Saved and loaded back: the same spec.
        const QString cfg = tmp_.filePath("cfg.json");
        QVERIFY(w.saveConfig(cfg));
        moeui::FinetuneWizard w2({}, db_);
        QVERIFY(w2.loadConfig(cfg));
        QCOMPARE(w2.spec().to_json(), w.spec().to_json());

        moeui::TrainingController controller;
        moeui::TrainingMonitor monitor(&controller, db_);
        monitor.show();
        monitor.start(w.spec(), "test run");
        QTRY_VERIFY_WITH_TIMEOUT(monitor.points("loss") >= 2, 60000);
        QVERIFY(monitor.points("lr") >= 2 && monitor.points("grad") >= 2 &&
                monitor.points("tokens") >= 2 && monitor.points("ram") >= 2);
        QTRY_COMPARE(monitor.state(), QString("running"));
        monitor.pauseButton()->click();
        QTRY_COMPARE_WITH_TIMEOUT(monitor.state(), QString("paused"), 30000);
        QCOMPARE(monitor.pauseButton()->text(), QString("Resume"));
        const int held = monitor.points("loss");
        QTest::qWait(300);
        QCOMPARE(monitor.points("loss"), held);
        monitor.pauseButton()->click();  // Resume
        QTRY_VERIFY_WITH_TIMEOUT(monitor.points("loss") > held, 30000);
        monitor.stopButton()->click();
        QTRY_COMPARE_WITH_TIMEOUT(monitor.state(), QString("stopped"), 30000);
        const int at = monitor.points("loss");
        QVERIFY(at < 40);
        QVERIFY(monitor.logText().contains("resumable from"));

        // The history shows the stopped run; resuming it runs to the end in the same row.
        QTableWidget* runs = monitor.runsTable();
        QCOMPARE(runs->rowCount(), 1);
        QCOMPARE(runs->item(0, 1)->text(), QString("stopped"));
        runs->setCurrentCell(0, 0);
        monitor.resumeSelected();
        QTRY_COMPARE_WITH_TIMEOUT(monitor.state(), QString("finished"), 120000);
        QCOMPARE(monitor.points("loss"), 40 - at);
        QCOMPARE(runs->rowCount(), 1);
        QCOMPARE(runs->item(0, 1)->text(), QString("finished"));
        moe::TrainingRunStore store(db_.toStdString());
        QCOMPARE(store.metrics(store.runs().front().id).size(), size_t(40));

        // Export: the finished run's adapter merged into its base model, as a model folder the
        // engine loads.
        QTemporaryDir out;
        QSignalSpy exported(&monitor, &moeui::TrainingMonitor::exportFinished);
        runs->setCurrentCell(0, 0);
        monitor.exportMerged(out.filePath("merged"));
        QTRY_COMPARE_WITH_TIMEOUT(exported.size(), 1, 60000);
        QVERIFY2(exported.front().front().toString().isEmpty(),
                 qPrintable(exported.front().front().toString()));
        QVERIFY(QFile::exists(out.filePath("merged/model.safetensors")));
        QVERIFY(monitor.logText().contains("Merged model written to"));
        moe::LoadOptions lo;
        QVERIFY(moe::load_model(out.filePath("merged").toStdString(), lo) != nullptr);

        // The adapter as a PEFT folder (the engine loads it) and, for this Hugging Face base,
        // a GGUF export refused with the reason.
        exported.clear();
        monitor.exportAdapter("peft", out.filePath("peft"));
        QTRY_COMPARE_WITH_TIMEOUT(exported.size(), 1, 60000);
        QVERIFY2(exported.front().front().toString().isEmpty(),
                 qPrintable(exported.front().front().toString()));
        QVERIFY(!moe::load_peft_adapter(out.filePath("peft").toStdString()).layers.empty());
        exported.clear();
        monitor.exportAdapter("gguf", out.filePath("a.gguf"));
        QTRY_COMPARE_WITH_TIMEOUT(exported.size(), 1, 60000);
        QVERIFY(!exported.front().front().toString().isEmpty());

        // Chat with this adapter: the run's base model and adapter, side by side.
        QSignalSpy chat(&monitor, &moeui::TrainingMonitor::chatWithAdapterRequested);
        runs->setCurrentCell(0, 0);
        monitor.chatWithSelected();
        QCOMPARE(chat.size(), 1);
        QCOMPARE(chat.front().at(0).toString(), model_);
        const QString adapter = chat.front().at(1).toString();
        QCOMPARE(adapter, tmp_.filePath("run") + "/adapter");
        moeui::EngineHost host(tmp_.filePath("chat.db"));
        moeui::AdapterChatDialog dialog(&host, model_, adapter);
        dialog.show();
        dialog.maxTokensSpin->setValue(8);
        QSignalSpy answered(&dialog, &moeui::AdapterChatDialog::answered);
        QElapsedTimer clock;
        clock.start();
        dialog.ask("Count to 3.");
        QVERIFY(clock.elapsed() < 200);  // the engine loads and answers on its own thread
        QVERIFY(dialog.running());
        QVERIFY(!dialog.sendButton->isEnabled());
        QTRY_COMPARE_WITH_TIMEOUT(answered.size(), 1, 60000);
        QVERIFY2(answered.front().front().toString().isEmpty(),
                 qPrintable(answered.front().front().toString()));
        QVERIFY(!dialog.running());
        QVERIFY(dialog.status().startsWith("Done"));
        QVERIFY(!dialog.baseText().isEmpty() && !dialog.adaptedText().isEmpty());
#endif
    }

    // A dataset naming Alpaca's fields otherwise: refused with its keys, mapped on the page,
    // then previewed and kept in the config; the estimate on every page.
    void fieldMappingAndEstimate() {
#ifndef MOE_HAVE_CHARTS
        QSKIP("built without QtCharts");
#else
        std::string renamed = moetest::alpaca_jsonl(6);
        for (auto [from, to] :
             {std::pair{"\"instruction\"", "\"question\""}, std::pair{"\"output\"", "\"answer\""}})
            for (size_t at; (at = renamed.find(from)) != std::string::npos;)
                renamed.replace(at, std::string(from).size(), to);
        const QString data = write("renamed.jsonl", QByteArray::fromStdString(renamed));
        moeui::FinetuneWizard w(model_, db_);
        w.outEdit->setText(tmp_.filePath("mapped-run"));
        w.dataEdit->setText(data);
        w.show();
        // The model page says whether it fits, once the model is measured (off the GUI thread).
        QTRY_VERIFY_WITH_TIMEOUT(w.estimate().has_value(), 30000);
        QVERIFY2(w.fitText().contains("fits this machine"), qPrintable(w.fitText()));
        w.next();
        QCOMPARE(w.currentId(), 1);
        QVERIFY2(w.datasetError().contains("cannot tell the format") &&
                     w.datasetError().contains("\"question\""),
                 qPrintable(w.datasetError()));
        QVERIFY(!w.currentPage()->isComplete());
        moeui::FieldMapEditor* map = w.fieldMap();
        QVERIFY(map->isVisible());  // shown when a file does not load
        QCOMPARE(map->shownFormat(), QString("alpaca"));
        QVERIFY(map->box("instruction")->findText("question") > 0);
        map->box("instruction")->setCurrentText("question");
        map->box("output")->setCurrentText("answer");
        QVERIFY(!w.currentPage()->isComplete());  // stale until checked again
        QVERIFY2(w.checkDataset(), qPrintable(w.datasetError()));
        QVERIFY(w.currentPage()->isComplete());
        QVERIFY(w.previewHtml().contains("#c8f0c8"));
        QCOMPARE(w.spec().field_map.to_string(), std::string("instruction=question,output=answer"));

        w.next();  // LoRA: what each target adds, from the estimator
        QCOMPARE(w.currentId(), 2);
        QVERIFY2(w.targetCostText("experts").contains("43008 parameters at rank 8"),
                 qPrintable(w.targetCostText("experts")));
        QVERIFY(w.targetCostText("mlp").contains("5376 parameters"));
        w.rankSpin->setValue(4);
        QVERIFY(w.targetCostText("attention").contains("9216 parameters at rank 4"));
        const int64_t without = w.estimate()->adapter_params;
        w.expertsCheck->setChecked(true);
        QCOMPARE(w.estimate()->adapter_params, without + 21504);
        w.next();
        w.checkpointCheck->setChecked(true);
        w.next();
        QCOMPARE(w.currentId(), 4);
        QVERIFY2(w.estimateText().contains("RAM:") && w.estimateText().contains("VRAM: none") &&
                     w.estimateText().contains("Time:"),
                 qPrintable(w.estimateText()));
        QVERIFY(w.reviewText().contains("--field-map instruction=question,output=answer"));
        QVERIFY(w.reviewText().contains("--gradient-checkpointing"));
        const QString cfg = tmp_.filePath("mapped.json");
        QVERIFY(w.saveConfig(cfg));
        moeui::FinetuneWizard w2({}, db_);
        QVERIFY(w2.loadConfig(cfg));
        QCOMPARE(w2.spec().to_json(), w.spec().to_json());
#endif
    }

    // Closing the app during a run (the controller and its job destroyed) leaves the run
    // stopped with a checkpoint; after a "restart" (a new controller and monitor on the same
    // database) the history shows it and resuming finishes it in the same row.
    void closeDuringRunThenResumeAfterRestart() {
#ifndef MOE_HAVE_CHARTS
        QSKIP("built without QtCharts");
#else
        const QString db = tmp_.filePath("restart.db");
        moe::FinetuneSpec spec;
        spec.model = model_.toStdString();
        spec.data = {write("restart.jsonl", QByteArray::fromStdString(moetest::alpaca_jsonl(10)))
                         .toStdString()};
        spec.out = tmp_.filePath("restart-run").toStdString();
        spec.store = db.toStdString();
        spec.rank = 4;
        spec.steps = 60;
        spec.lr = 0.01;
        int done_before = 0;
        {
            auto controller = std::make_unique<moeui::TrainingController>();
            moeui::TrainingMonitor monitor(controller.get(), db);
            monitor.start(spec, "before the restart");
            QTRY_VERIFY_WITH_TIMEOUT(monitor.points("loss") >= 3, 60000);
            controller.reset();  // the app closes: the job stops after its step, checkpointed
            moe::TrainingRunStore store(db.toStdString());
            const auto before = store.runs();
            QCOMPARE(before.size(), size_t(1));
            done_before = int(store.metrics(before.front().id).size());
            QVERIFY2(done_before >= 3 && done_before < 60,
                     qPrintable(QString::number(done_before)));
        }
        moeui::TrainingController controller;
        moeui::TrainingMonitor monitor(&controller, db);
        QTableWidget* runs = monitor.runsTable();
        QCOMPARE(runs->rowCount(), 1);
        QCOMPARE(runs->item(0, 1)->text(), QString("stopped"));
        // A stopped run's adapter is its steps so far, and the monitor says so.
        QSignalSpy chat(&monitor, &moeui::TrainingMonitor::chatWithAdapterRequested);
        runs->setCurrentCell(0, 0);
        monitor.chatWithSelected();
        QCOMPARE(chat.size(), 1);
        QVERIFY2(monitor.statusText().contains("is stopped: chatting with its adapter so far"),
                 qPrintable(monitor.statusText()));
        runs->setCurrentCell(0, 0);
        monitor.resumeSelected();
        QTRY_COMPARE_WITH_TIMEOUT(monitor.state(), QString("finished"), 120000);
        QCOMPARE(runs->item(0, 1)->text(), QString("finished"));
        moe::TrainingRunStore store(db.toStdString());
        const auto after = store.runs();
        QCOMPARE(after.size(), size_t(1));
        QCOMPARE(store.metrics(after.front().id).size(), size_t(60));

        // Compare overlays the selected run's loss curve (its 60 steps) on the loss chart.
        runs->setCurrentCell(0, 0);
        monitor.compareSelected();
        QCOMPARE(monitor.compared(), 1);
        QCOMPARE(monitor.comparedPoints(0), 60);
        runs->clearSelection();
        monitor.compareSelected();
        QCOMPARE(monitor.compared(), 0);

        // Duplicate hands its configuration on; delete removes the row and the run's folder.
        QSignalSpy dup(&monitor, &moeui::TrainingMonitor::duplicateRequested);
        runs->setCurrentCell(0, 0);
        monitor.duplicateSelected();
        QCOMPARE(dup.size(), 1);
        QCOMPARE(dup.front().front().value<moe::FinetuneSpec>().out, spec.out);
        QVERIFY(QDir(QString::fromStdString(spec.out)).exists());
        monitor.deleteSelected(true);
        QCOMPARE(runs->rowCount(), 0);
        QVERIFY(moe::TrainingRunStore(db.toStdString()).runs().empty());
        QVERIFY(!QDir(QString::fromStdString(spec.out)).exists());
#endif
    }
};

QTEST_MAIN(TestFinetune)
#include "tst_finetune.moc"
