#pragma once
// A conversation's settings: its system prompt and sampling (temperature, top-p, top-k, min-p,
// repetition penalty, maximum answer length, seed), kept as the conversation's settings JSON
// (api/chat_session.h reads the same keys).
#include <QDialog>
#include <QString>

class QDoubleSpinBox;
class QPlainTextEdit;
class QSpinBox;

namespace moeui {

class SettingsDialog : public QDialog {
    Q_OBJECT

  public:
    // `json`: the conversation's current settings (unknown keys are kept).
    explicit SettingsDialog(const QString& json, QWidget* parent = nullptr);
    QString json() const;

  private:
    QString original_;
    QPlainTextEdit* system_ = nullptr;
    QDoubleSpinBox *temperature_ = nullptr, *top_p_ = nullptr, *min_p_ = nullptr,
                   *repetition_ = nullptr;
    QSpinBox *top_k_ = nullptr, *max_tokens_ = nullptr, *seed_ = nullptr;
};

}  // namespace moeui
