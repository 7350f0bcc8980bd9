#pragma once
// The placement editor's export: the edited placement as another engine's options, with the
// note on what the translation approximated (hybrid/placement_export.h) — llama.cpp's `-ot`
// tensor overrides, or SGLang with KTransformers' options and the per-layer GPU experts in a
// JSON file beside them. Copy puts the options on the clipboard; Save writes them to a file.
// A pure translation of the placement: nothing here runs on the engine.
#include <QDialog>

class QCheckBox;
class QComboBox;
class QLabel;
class QPlainTextEdit;

namespace moeui {

class PlacementExportDialog : public QDialog {
    Q_OBJECT

  public:
    // `placement_json`: a moe::Placement. `telemetry`: its model has expert telemetry (the
    // default of sglang-kt's frequency strategy).
    PlacementExportDialog(const QString& placement_json, bool telemetry, QWidget* parent = nullptr);
    enum Format { LlamaCpp, SglangKt };
    void set_format(Format f);
    QString options() const;  // the command-line fragment shown
    QString note() const;
    void copy() const;
    // Writes options() to `path`; sglang-kt also writes its experts file beside it
    // (experts_path()). Says what it did in the note line.
    bool save(const QString& path);
    static QString experts_path(const QString& options_path);

  private:
    void update();
    QString placement_;
    QComboBox* format_ = nullptr;
    QCheckBox* frequency_ = nullptr;
    QPlainTextEdit* text_ = nullptr;
    QLabel* note_ = nullptr;
    QLabel* status_ = nullptr;
};

}  // namespace moeui
