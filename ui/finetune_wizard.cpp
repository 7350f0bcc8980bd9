#include "finetune_wizard.h"

#include "field_map_editor.h"
#include "token_histogram.h"

#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFile>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPointer>
#include <QPushButton>
#include <QSpinBox>
#include <QTextEdit>
#include <QVBoxLayout>
#include <functional>
#include <thread>

#include "api/finetune_data.h"
#include "core/memory_info.h"

namespace moeui {

namespace {

// A page whose Next/Finish waits for a condition (the dataset page: the files must load).
class GatedPage : public QWizardPage {
  public:
    std::function<bool()> ready;
    bool isComplete() const override { return !ready || ready(); }
    // QWizard::next() (keyboard, scripts) does not look at isComplete(): refuse here too.
    bool validatePage() override { return isComplete(); }
};

QSpinBox* spin(int lo, int hi, int value) {
    auto* s = new QSpinBox;
    s->setRange(lo, hi);
    s->setValue(value);
    return s;
}

QDoubleSpinBox* dspin(double lo, double hi, double value, int decimals, double step) {
    auto* s = new QDoubleSpinBox;
    s->setDecimals(decimals);
    s->setRange(lo, hi);
    s->setSingleStep(step);
    s->setValue(value);
    return s;
}

QString html_escape(const std::string& s) {
    return QString::fromStdString(s).toHtmlEscaped().replace("\n", "↵<br>");
}

}  // namespace

FinetuneWizard::FinetuneWizard(const QString& model_path, const QString& store_path,
                               QWidget* parent)
    : QWizard(parent), store_path_(store_path) {
    setWindowTitle(tr("Fine-tune a model"));
    addPage(modelPage());
    addPage(dataPage());
    addPage(loraPage());
    addPage(trainingPage());
    addPage(reviewPage());
    modelEdit->setText(model_path);
    // Every page shows figures of the estimate: refresh them on arrival (the model is
    // measured once per path, off this thread).
    connect(this, &QWizard::currentIdChanged, this, [this] { measureModel(); });
    measureModel();
}

QWizardPage* FinetuneWizard::modelPage() {
    auto* p = new GatedPage;
    p->ready = [this] { return !modelEdit->text().isEmpty() && !outEdit->text().isEmpty(); };
    p->setTitle(tr("Base model"));
    p->setSubTitle(
        tr("The loaded model or a model folder / .gguf file. Training loads its own "
           "copy with the experts in fp32 on the CPU."));
    modelEdit = new QLineEdit;
    outEdit = new QLineEdit;
    auto* browse = new QPushButton(tr("Browse…"));
    connect(browse, &QPushButton::clicked, this, [this] {
        const QString d = QFileDialog::getExistingDirectory(this, tr("Model folder"));
        if (!d.isEmpty()) modelEdit->setText(d);
    });
    for (QLineEdit* e : {modelEdit, outEdit})
        connect(e, &QLineEdit::textChanged, p, &QWizardPage::completeChanged);
    auto* row = new QHBoxLayout;
    row->addWidget(modelEdit);
    row->addWidget(browse);
    connect(modelEdit, &QLineEdit::editingFinished, this, [this] { measureModel(); });
    fitLabel_ = new QLabel;
    fitLabel_->setWordWrap(true);
    fitLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* form = new QFormLayout(p);
    form->addRow(tr("Model"), row);
    form->addRow(tr("Output folder"), outEdit);
    form->addRow(tr("This machine"), fitLabel_);
    return p;
}

QWizardPage* FinetuneWizard::dataPage() {
    auto* p = new GatedPage;
    p->ready = [this] { return dataOk_; };
    p->setTitle(tr("Dataset"));
    p->setSubTitle(
        tr("JSONL/JSON (Alpaca, OpenAI messages, ShareGPT) or plain text. Trained "
           "tokens are highlighted in the preview."));
    dataEdit = new QLineEdit;
    dataEdit->setPlaceholderText(tr("file.jsonl[,other.jsonl]"));
    formatCombo = new QComboBox;
    formatCombo->addItems({"auto", "text", "alpaca", "messages", "sharegpt"});
    evalFractionSpin = dspin(0, 0.9, 0, 2, 0.05);
    cutoffSpin = spin(8, 1 << 20, 1024);
    packingCheck = new QCheckBox(tr("Pack records into sequences of the cut-off"));
    promptCheck = new QCheckBox(tr("Train on the prompt too (not only the assistant's tokens)"));
    auto* browse = new QPushButton(tr("Browse…"));
    auto* check = new QPushButton(tr("Check"));
    connect(browse, &QPushButton::clicked, this, [this] {
        const QStringList files = QFileDialog::getOpenFileNames(this, tr("Dataset files"));
        if (!files.isEmpty()) dataEdit->setText(files.join(','));
    });
    connect(check, &QPushButton::clicked, this, [this] { checkDataset(); });
    // Any change makes the last check stale: the page waits for a new one.
    const auto stale = [this, p] {
        dataOk_ = false;
        emit p->completeChanged();
    };
    connect(dataEdit, &QLineEdit::textChanged, this, stale);
    connect(formatCombo, &QComboBox::currentTextChanged, this, stale);
    connect(cutoffSpin, &QSpinBox::valueChanged, this, stale);
    connect(packingCheck, &QCheckBox::toggled, this, stale);
    connect(promptCheck, &QCheckBox::toggled, this, stale);
    fieldMap_ = new FieldMapEditor;
    connect(fieldMap_, &FieldMapEditor::changed, this, stale);
    connect(formatCombo, &QComboBox::currentTextChanged, fieldMap_, &FieldMapEditor::setFormat);
    connect(this, &QWizard::currentIdChanged, this, [this, p](int id) {
        if (page(id) == p && !dataOk_ && !dataEdit->text().isEmpty()) checkDataset();
    });
    dataStatus_ = new QLabel;
    dataStatus_->setWordWrap(true);
    dataStatus_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    preview_ = new QTextEdit;
    preview_->setReadOnly(true);
    auto* row = new QHBoxLayout;
    row->addWidget(dataEdit);
    row->addWidget(browse);
    row->addWidget(check);
    auto* form = new QFormLayout;
    form->addRow(tr("Files"), row);
    form->addRow(tr("Format"), formatCombo);
    form->addRow(tr("Eval fraction"), evalFractionSpin);
    form->addRow(tr("Cut-off (tokens)"), cutoffSpin);
    form->addRow(packingCheck);
    form->addRow(promptCheck);
    // The mapping stays folded until wanted: most datasets use the expected names.
    auto* showMapping = new QCheckBox(tr("Map the dataset's fields by hand"));
    showMapping->setToolTip(
        tr("When the dataset names its fields otherwise (e.g. \"question\" and \"answer\" "
           "for Alpaca's instruction and output), pick its names here"));
    fieldMap_->setVisible(false);
    connect(showMapping, &QCheckBox::toggled, fieldMap_, &QWidget::setVisible);
    showMapping_ = showMapping;
    auto* layout = new QVBoxLayout(p);
    layout->addLayout(form);
    layout->addWidget(showMapping);
    layout->addWidget(fieldMap_);
    layout->addWidget(dataStatus_);
    layout->addWidget(preview_, 1);
    histogram_ = new TokenHistogram;
    histogram_->setToolTip(tr("Record lengths in tokens against the cut-off (red: trimmed)"));
    layout->addWidget(histogram_);
    return p;
}

QWizardPage* FinetuneWizard::loraPage() {
    auto* p = new QWizardPage;
    p->setTitle(tr("LoRA"));
    rankSpin = spin(1, 1024, 8);
    alphaSpin = dspin(0.01, 4096, 16, 2, 1);
    dropoutSpin = dspin(0, 0, 0, 2, 0.05);
    dropoutSpin->setToolTip(tr("The trainer applies no LoRA dropout yet."));
    mlpCheck = new QCheckBox(tr("Dense / shared MLP (gate_proj, up_proj, down_proj)"));
    expertsCheck = new QCheckBox(tr("Routed experts"));
    auto* attention = new QLabel(tr("Attention (q_proj, k_proj, v_proj, o_proj): always"));
    attentionCost_ = new QLabel;
    mlpCost_ = new QLabel;
    expertsCost_ = new QLabel;
    connect(rankSpin, &QSpinBox::valueChanged, this, [this] { updateEstimate(); });
    for (QCheckBox* c : {mlpCheck, expertsCheck})
        connect(c, &QCheckBox::toggled, this, [this] { updateEstimate(); });
    auto* form = new QFormLayout(p);
    form->addRow(tr("Rank"), rankSpin);
    form->addRow(tr("Alpha"), alphaSpin);
    form->addRow(tr("Dropout"), dropoutSpin);
    form->addRow(attention, attentionCost_);
    form->addRow(mlpCheck, mlpCost_);
    form->addRow(expertsCheck, expertsCost_);
    return p;
}

QWizardPage* FinetuneWizard::trainingPage() {
    auto* p = new QWizardPage;
    p->setTitle(tr("Training"));
    p->setSubTitle(tr("One micro-batch is one sequence; accumulation makes the batch."));
    lrSpin = dspin(1e-7, 1, 2e-4, 7, 1e-5);
    scheduleCombo = new QComboBox;
    scheduleCombo->addItems({"cosine", "linear", "constant"});
    warmupSpin = spin(0, 1000000, 0);
    epochsSpin = spin(1, 10000, 1);
    stepsSpin = spin(0, 100000000, 0);
    stepsSpin->setSpecialValueText(tr("from epochs"));
    accumSpin = spin(1, 4096, 1);
    seedSpin = spin(0, 1 << 30, 0);
    saveSpin = spin(0, 1000000, 0);
    saveSpin->setSpecialValueText(tr("end only"));
    evalSpin = spin(0, 1000000, 0);
    evalSpin->setSpecialValueText(tr("end only"));
    checkpointCheck =
        new QCheckBox(tr("Gradient checkpointing (less memory, about a third more time)"));
    auto* form = new QFormLayout(p);
    form->addRow(tr("Learning rate"), lrSpin);
    form->addRow(tr("Schedule"), scheduleCombo);
    form->addRow(tr("Warm-up steps"), warmupSpin);
    form->addRow(tr("Epochs"), epochsSpin);
    form->addRow(tr("Steps"), stepsSpin);
    form->addRow(tr("Gradient accumulation"), accumSpin);
    form->addRow(tr("Seed"), seedSpin);
    form->addRow(tr("Save every (steps)"), saveSpin);
    form->addRow(tr("Evaluate every (steps)"), evalSpin);
    form->addRow(checkpointCheck);
    return p;
}

QWizardPage* FinetuneWizard::reviewPage() {
    auto* p = new QWizardPage;
    p->setTitle(tr("Review"));
    p->setSubTitle(tr("The same run from the command line, and its config file."));
    review_ = new QPlainTextEdit;
    review_->setReadOnly(true);
    auto* save = new QPushButton(tr("Save config…"));
    auto* load = new QPushButton(tr("Load config…"));
    connect(save, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getSaveFileName(this, tr("Save config"), {}, "*.json");
        if (!f.isEmpty()) saveConfig(f);
    });
    connect(load, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Load config"), {}, "*.json");
        if (!f.isEmpty()) loadConfig(f);
    });
    connect(this, &QWizard::currentIdChanged, this, [this, p](int id) {
        if (page(id) == p) review_->setPlainText(reviewText());
    });
    auto* row = new QHBoxLayout;
    row->addWidget(save);
    row->addWidget(load);
    row->addStretch();
    estimateLabel_ = new QLabel;
    estimateLabel_->setWordWrap(true);
    estimateLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* layout = new QVBoxLayout(p);
    layout->addWidget(estimateLabel_);
    layout->addWidget(review_);
    layout->addLayout(row);
    return p;
}

moe::FinetuneSpec FinetuneWizard::spec() const {
    moe::FinetuneSpec s;
    s.model = modelEdit->text().toStdString();
    s.out = outEdit->text().toStdString();
    for (const QString& f : dataEdit->text().split(',', Qt::SkipEmptyParts))
        s.data.push_back(f.trimmed().toStdString());
    s.format = formatCombo->currentText().toStdString();
    s.eval_fraction = evalFractionSpin->value();
    s.cutoff = cutoffSpin->value();
    s.packing = packingCheck->isChecked();
    s.train_on_prompt = promptCheck->isChecked();
    s.field_map = fieldMap_->map();
    s.rank = rankSpin->value();
    s.alpha = alphaSpin->value();
    s.dropout = dropoutSpin->value();
    s.targets = {"q_proj", "k_proj", "v_proj", "o_proj"};
    if (mlpCheck->isChecked())
        s.targets.insert(s.targets.end(), {"gate_proj", "up_proj", "down_proj"});
    if (expertsCheck->isChecked()) s.targets.push_back("experts");
    s.lr = lrSpin->value();
    s.schedule = scheduleCombo->currentText().toStdString();
    s.warmup = warmupSpin->value();
    s.epochs = epochsSpin->value();
    s.steps = stepsSpin->value();
    s.grad_accum = accumSpin->value();
    s.seed = uint64_t(seedSpin->value());
    s.save_every = saveSpin->value();
    s.eval_every = evalSpin->value();
    s.gradient_checkpointing = checkpointCheck->isChecked();
    s.store = store_path_.toStdString();
    return s;
}

void FinetuneWizard::setSpec(const moe::FinetuneSpec& s) {
    modelEdit->setText(QString::fromStdString(s.model));
    outEdit->setText(QString::fromStdString(s.out));
    QStringList files;
    for (const std::string& f : s.data) files << QString::fromStdString(f);
    dataEdit->setText(files.join(','));
    formatCombo->setCurrentText(QString::fromStdString(s.format));
    evalFractionSpin->setValue(s.eval_fraction);
    cutoffSpin->setValue(int(s.cutoff));
    packingCheck->setChecked(s.packing);
    promptCheck->setChecked(s.train_on_prompt);
    fieldMap_->setMap(s.field_map);
    if (!s.field_map.empty()) showMapping_->setChecked(true);
    rankSpin->setValue(int(s.rank));
    alphaSpin->setValue(s.alpha);
    const auto has = [&](const char* t) {
        return std::find(s.targets.begin(), s.targets.end(), t) != s.targets.end();
    };
    mlpCheck->setChecked(has("gate_proj"));
    expertsCheck->setChecked(has("experts"));
    lrSpin->setValue(s.lr);
    scheduleCombo->setCurrentText(QString::fromStdString(s.schedule));
    warmupSpin->setValue(int(s.warmup));
    epochsSpin->setValue(int(s.epochs));
    stepsSpin->setValue(int(s.steps));
    accumSpin->setValue(int(s.grad_accum));
    seedSpin->setValue(int(s.seed));
    saveSpin->setValue(int(s.save_every));
    evalSpin->setValue(int(s.eval_every));
    checkpointCheck->setChecked(s.gradient_checkpointing);
}

bool FinetuneWizard::checkDataset() {
    dataOk_ = false;
    dataError_.clear();
    preview_->clear();
    const moe::FinetuneSpec current = spec();
    if (!current.data.empty()) {
        try {
            // The first file's keys, for mapping them by hand (also when it does not load).
            fieldMap_->setKeys(moe::train::dataset_keys(current.data.front()));
        } catch (const std::exception&) {
            // Unreadable: the check below says why, with the file and line.
        }
    }
    try {
        // Synchronous: the tokenizer and the files only (no weights); a very large dataset
        // would block the GUI for its tokenization (a known limit of this first slice).
        const moe::DatasetReport r = moe::inspect_finetune_data(spec(), 3);
        QString html;
        for (const moe::PreviewRecord& rec : r.preview) {
            html += QString("<p><b>%1</b> (%2 tokens)<br><tt>")
                        .arg(QString::fromStdString(rec.origin).toHtmlEscaped())
                        .arg(rec.tokens);
            for (const moe::PreviewSpan& sp : rec.spans)
                html += sp.trained
                            ? "<span style='background:#c8f0c8'>" + html_escape(sp.text) + "</span>"
                            : "<span style='color:#777'>" + html_escape(sp.text) + "</span>";
            html += "</tt></p>";
        }
        preview_->setHtml(html);
        histogram_->set_lengths(r.record_tokens, spec().cutoff, spec().packing);
        dataSequences_ = r.train_sequences;
        dataTokensPerSequence_ =
            r.train_sequences > 0 ? double(r.train_tokens) / double(r.train_sequences) : 0.0;
        dataStatus_->setText(tr("%1 records (%2), %3 training and %4 eval sequences, %5 cut at "
                                "the cut-off, %6 training tokens")
                                 .arg(r.records)
                                 .arg(QString::fromStdString(r.format))
                                 .arg(r.train_sequences)
                                 .arg(r.eval_sequences)
                                 .arg(r.truncated)
                                 .arg(r.train_tokens));
        dataOk_ = true;
    } catch (const std::exception& e) {
        dataError_ = QString::fromUtf8(e.what());
        dataStatus_->setText("<span style='color:#b00'>" + dataError_.toHtmlEscaped() + "</span>");
        // Fields named otherwise are the usual cause of a "missing" field: show the mapping.
        showMapping_->setChecked(true);
    }
    if (auto* p = page(1)) emit p->completeChanged();
    return dataOk_;
}

QString FinetuneWizard::datasetError() const {
    return dataError_;
}

QString FinetuneWizard::previewHtml() const {
    return preview_->toHtml();
}

QString FinetuneWizard::reviewText() const {
    const moe::FinetuneSpec s = spec();
    return QString::fromStdString(s.command_line() + "\n\n# config file (--config FILE.json)\n" +
                                  s.to_json().dump(2));
}

bool FinetuneWizard::saveConfig(const QString& path) const {
    QFile f(path);
    if (!f.open(QIODevice::WriteOnly)) return false;
    f.write(QByteArray::fromStdString(spec().to_json().dump(2) + "\n"));
    return true;
}

bool FinetuneWizard::loadConfig(const QString& path) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) return false;
    try {
        setSpec(moe::FinetuneSpec::from_json(nlohmann::json::parse(f.readAll().toStdString())));
    } catch (const std::exception& e) {
        dataStatus_->setText(tr("%1: %2").arg(path, QString::fromUtf8(e.what())));
        return false;
    }
    review_->setPlainText(reviewText());
    return true;
}

void FinetuneWizard::measureModel() {
    const QString model = modelEdit->text().trimmed();
    if (model == shapesFor_) {
        updateEstimate();
        return;
    }
    shapesFor_ = model;
    shapes_.reset();
    shapesError_.clear();
    if (model.isEmpty()) {
        updateEstimate();
        return;
    }
    fitLabel_->setText(tr("Measuring the model..."));
    // Loading the structure maps the weights and walks every tensor: seconds for a large
    // model, so off the GUI thread; the answer is dropped if another model was asked since.
    QPointer<FinetuneWizard> self(this);
    moe::FinetuneSpec s = spec();
    s.model = model.toStdString();
    std::thread([self, s, model, store = store_path_.toStdString()] {
        std::optional<moe::FinetuneShapes> shapes;
        moe::EstimateInputs in;
        QString error;
        try {
            shapes = moe::load_finetune_shapes(s.model);
            in = moe::machine_estimate_inputs(s, store);
        } catch (const std::exception& e) {
            error = QString::fromUtf8(e.what());
        }
        QMetaObject::invokeMethod(qApp, [self, model, shapes, in, error] {
            if (!self || self->shapesFor_ != model) return;
            self->shapes_ = shapes;
            self->machine_ = in;
            self->shapesError_ = error;
            self->updateEstimate();
            emit self->estimateReady();
        });
    }).detach();
}

std::optional<moe::FinetuneEstimate> FinetuneWizard::estimate() const {
    if (!shapes_) return std::nullopt;
    moe::EstimateInputs in = machine_;
    in.sequences = dataSequences_;
    in.tokens_per_sequence = dataTokensPerSequence_;
    return moe::estimate_finetune(*shapes_, spec(), in);
}

void FinetuneWizard::updateEstimate() {
    const auto e = estimate();
    if (!e) {
        const QString why = shapesError_.isEmpty()
                                ? (shapesFor_.isEmpty() ? QString() : tr("Measuring the model..."))
                                : tr("Cannot estimate: %1").arg(shapesError_);
        for (QLabel* l : {fitLabel_, estimateLabel_, attentionCost_, mlpCost_, expertsCost_})
            l->setText(l == fitLabel_ || l == estimateLabel_ ? why : QString());
        return;
    }
    const char* colour = e->fits ? "#080" : e->fits_working ? "#b60" : "#b00";
    fitLabel_->setText(QString("<span style='color:%1'>%2</span>")
                           .arg(colour, QString::fromStdString(e->verdict).toHtmlEscaped()));
    estimateLabel_->setText(
        QString::fromStdString(e->summary()).toHtmlEscaped().replace("\n", "<br>"));
    for (auto [group, label] : {std::pair{"attention", attentionCost_}, std::pair{"mlp", mlpCost_},
                                std::pair{"experts", expertsCost_}})
        label->setText(targetCostText(group));
}

QString FinetuneWizard::fitText() const {
    return fitLabel_->text();
}

QString FinetuneWizard::targetCostText(const QString& group) const {
    const auto e = estimate();
    if (!e) return {};
    for (const moe::TargetCost& t : e->targets)
        if (QString::fromStdString(t.group) == group)
            return tr("+%1 (%2 parameters at rank %3)")
                .arg(QString::fromStdString(moe::format_gib(t.bytes)))
                .arg(t.params)
                .arg(rankSpin->value());
    return tr("this model has none");
}

QString FinetuneWizard::estimateText() const {
    return estimateLabel_->text();
}

}  // namespace moeui
