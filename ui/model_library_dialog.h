#pragma once
// The model library: the models found on this machine (Hugging Face cache, LM Studio, Ollama,
// the folders the user added) with what matters before loading one — architecture, parameters
// total and active, experts, stored type, context, size, whether it fits RAM and VRAM. The
// scan reads headers only and runs on a thread of its own; double-click or Load opens a model.
#include <QDialog>
#include <QStringList>

class QLabel;
class QTableWidget;
class QThread;

namespace moeui {

class ModelLibraryDialog : public QDialog {
    Q_OBJECT

  public:
    explicit ModelLibraryDialog(QWidget* parent = nullptr);
    ~ModelLibraryDialog() override;
    // Where to look besides the default places (QSettings "library/folders").
    static QStringList user_folders();

  public slots:
    void rescan();

  signals:
    void loadRequested(const QString& path);
    void scanFinished(int models);

  private:
    void add_folder();
    QTableWidget* table_ = nullptr;
    QLabel* status_ = nullptr;
    QThread* scan_ = nullptr;
};

}  // namespace moeui
