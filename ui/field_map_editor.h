#pragma once
// The wizard's manual field mapping (issue 10): for the dataset's format, each field the
// loader expects (Alpaca's instruction/input/output/system, the messages' list, role and
// content, ShareGPT's conversations/from/value, the role values) beside a box offering the
// keys of the dataset's first record, so that a dataset naming them otherwise ("question",
// "answer") is read as the format it is. A box left empty keeps the expected name. The result
// is the spec's FieldMap (train/field_map.h), the same that `--field-map` gives the CLI.
#include <QMap>
#include <QWidget>

#include "train/dataset.h"
#include "train/field_map.h"

class QComboBox;
class QFormLayout;
class QLabel;

namespace moeui {

class FieldMapEditor : public QWidget {
    Q_OBJECT

  public:
    explicit FieldMapEditor(QWidget* parent = nullptr);

    // The keys found in the dataset (offered in the boxes).
    void setKeys(const moe::train::DatasetKeys& keys);
    // "alpaca", "messages", "sharegpt", "text", or "auto" (the format the keys look like).
    void setFormat(const QString& format);
    QString shownFormat() const { return shown_; }
    moe::train::FieldMap map() const;
    void setMap(const moe::train::FieldMap& map);
    // The box of an expected field ("instruction", ...), null when the format has none.
    QComboBox* box(const QString& expected) const { return boxes_.value(expected); }

  signals:
    void changed();

  private:
    void rebuild();
    QString guessedFormat() const;

    moe::train::DatasetKeys keys_;
    moe::train::FieldMap map_;
    QString format_ = "auto", shown_;
    QFormLayout* form_;
    QLabel* note_;
    QMap<QString, QComboBox*> boxes_;
    bool rebuilding_ = false;
};

}  // namespace moeui
