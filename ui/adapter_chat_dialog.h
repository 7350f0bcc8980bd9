#pragma once
// "Chat with this adapter" (issue 10): one prompt, two answers side by side — the base model's
// and the same model's with a run's trained adapter — streamed as the engine produces them
// (EngineHost::chatWithAdapter; the engine runs both on its own thread, the dialog never
// waits). Same sampling on both sides (greedy by default), so a difference is the adapter's.
#include <QDialog>
#include <QPointer>

class QCheckBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;
class QTextEdit;

namespace moeui {

class EngineHost;

class AdapterChatDialog : public QDialog {
    Q_OBJECT

  public:
    AdapterChatDialog(EngineHost* host, const QString& model, const QString& adapter,
                      QWidget* parent = nullptr);
    ~AdapterChatDialog() override;

    // Sends `prompt` to both sides (the prompt box's text when empty).
    void ask(const QString& prompt = {});
    bool running() const { return request_ != 0; }
    QString baseText() const;
    QString adaptedText() const;
    QString status() const;

    QLineEdit* promptEdit;
    QPushButton *sendButton, *stopButton;
    QCheckBox* greedyCheck;
    QSpinBox* maxTokensSpin;

  signals:
    void answered(const QString& error);

  private:
    QPointer<EngineHost> host_;  // may go first when the app closes
    QString model_, adapter_;
    qint64 request_ = 0;
    QTextEdit *base_, *adapted_;
    QLabel* status_;
};

}  // namespace moeui
