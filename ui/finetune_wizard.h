#pragma once
// The fine-tuning wizard (issue 10): base model, dataset (files, format detected or chosen,
// records previewed as the model sees them with the trained tokens marked, errors with file
// and line, fields mapped by hand when the dataset names them otherwise), LoRA (the memory
// each target adds), training and a review page with the equivalent `moestudio-cli train`
// config, which can be saved and loaded, and the estimate of RAM, VRAM and time
// (api/finetune_estimate.h; the model page says whether the run fits this machine). The
// dataset page cannot be left while the files do not load, so a bad file never starts a run.
// The wizard only builds a FinetuneSpec; the caller starts it.
#include <QWizard>
#include <optional>

#include "api/finetune_estimate.h"
#include "api/finetune_spec.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QSpinBox;
class QTextEdit;

namespace moeui {

class FieldMapEditor;
class TokenHistogram;

class FinetuneWizard : public QWizard {
    Q_OBJECT

  public:
    // `model_path`: the loaded model (may be ""); `store_path`: where runs are recorded.
    FinetuneWizard(const QString& model_path, const QString& store_path, QWidget* parent = nullptr);

    moe::FinetuneSpec spec() const;
    void setSpec(const moe::FinetuneSpec& s);
    // Loads the dataset with the current settings: the preview, or the located error. True
    // when the files load.
    bool checkDataset();
    QString datasetError() const;
    QString previewHtml() const;
    const TokenHistogram* histogram() const { return histogram_; }
    QString reviewText() const;
    bool saveConfig(const QString& path) const;
    bool loadConfig(const QString& path);
    FieldMapEditor* fieldMap() const { return fieldMap_; }
    // The estimate for the current settings (nullopt while the model is being measured or
    // when it cannot be), and what the pages show of it.
    std::optional<moe::FinetuneEstimate> estimate() const;
    QString fitText() const;
    QString targetCostText(const QString& group) const;  // attention, mlp, experts
    QString estimateText() const;                        // the review page's

    // Widgets the GUI tests drive.
    QLineEdit *modelEdit, *dataEdit, *outEdit;
    QComboBox *formatCombo, *scheduleCombo;
    QSpinBox *rankSpin, *cutoffSpin, *warmupSpin, *epochsSpin, *stepsSpin, *accumSpin, *seedSpin,
        *saveSpin, *evalSpin;
    QDoubleSpinBox *alphaSpin, *dropoutSpin, *lrSpin, *evalFractionSpin;
    QCheckBox *packingCheck, *promptCheck, *expertsCheck, *mlpCheck, *checkpointCheck;

  signals:
    // The model was measured (or failed to be): the estimate's figures are current.
    void estimateReady();

  private:
    QWizardPage* modelPage();
    QWizardPage* dataPage();
    QWizardPage* loraPage();
    QWizardPage* trainingPage();
    QWizardPage* reviewPage();

    // Loads the model's structure off the GUI thread (once per model path), then estimates.
    void measureModel();
    void updateEstimate();

    QString store_path_;
    FieldMapEditor* fieldMap_ = nullptr;
    QCheckBox* showMapping_ = nullptr;
    QString shapesFor_, shapesError_;
    std::optional<moe::FinetuneShapes> shapes_;
    moe::EstimateInputs machine_;
    int64_t dataSequences_ = 0;
    double dataTokensPerSequence_ = 0;
    QLabel *fitLabel_, *estimateLabel_;
    QLabel *attentionCost_, *mlpCost_, *expertsCost_;
    QLabel* dataStatus_;
    QTextEdit* preview_;
    TokenHistogram* histogram_ = nullptr;
    QPlainTextEdit* review_;
    bool dataOk_ = false;
    QString dataError_;
};

}  // namespace moeui
