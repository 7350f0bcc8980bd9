#pragma once
// The fine-tuning wizard (issue 10): base model, dataset (files, format detected or chosen,
// records previewed as the model sees them with the trained tokens marked, errors with file
// and line), LoRA, training and a review page with the equivalent `moestudio-cli train`
// config, which can be saved and loaded. The dataset page cannot be left while the files do
// not load, so a bad file never starts a run. The wizard only builds a FinetuneSpec; the
// caller starts it.
#include <QWizard>

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

    // Widgets the GUI tests drive.
    QLineEdit *modelEdit, *dataEdit, *outEdit;
    QComboBox *formatCombo, *scheduleCombo;
    QSpinBox *rankSpin, *cutoffSpin, *warmupSpin, *epochsSpin, *stepsSpin, *accumSpin, *seedSpin,
        *saveSpin, *evalSpin;
    QDoubleSpinBox *alphaSpin, *dropoutSpin, *lrSpin, *evalFractionSpin;
    QCheckBox *packingCheck, *promptCheck, *expertsCheck, *mlpCheck;

  private:
    QWizardPage* modelPage();
    QWizardPage* dataPage();
    QWizardPage* loraPage();
    QWizardPage* trainingPage();
    QWizardPage* reviewPage();

    QString store_path_;
    QLabel* dataStatus_;
    QTextEdit* preview_;
    TokenHistogram* histogram_ = nullptr;
    QPlainTextEdit* review_;
    bool dataOk_ = false;
    QString dataError_;
};

}  // namespace moeui
