#include "field_map_editor.h"

#include <QComboBox>
#include <QFormLayout>
#include <QLabel>
#include <QLineEdit>
#include <QVBoxLayout>

namespace moeui {

namespace {

enum class Where { Record, Turn, Tag };
struct Row {
    const char* expected;
    Where where;
};

// The fields each format reads (train/dataset.cpp), in the order a record has them.
QList<Row> rows_of(const QString& format) {
    if (format == "text") return {{"text", Where::Record}};
    if (format == "alpaca")
        return {{"instruction", Where::Record},
                {"input", Where::Record},
                {"output", Where::Record},
                {"system", Where::Record}};
    const bool openai = format == "messages";
    return {{openai ? "messages" : "conversations", Where::Record},
            {openai ? "role" : "from", Where::Turn},
            {openai ? "content" : "value", Where::Turn},
            {"user_tag", Where::Tag},
            {"assistant_tag", Where::Tag},
            {"system_tag", Where::Tag}};
}

bool has(const std::vector<std::string>& v, const char* s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

FieldMapEditor::FieldMapEditor(QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    note_ = new QLabel;
    note_->setWordWrap(true);
    form_ = new QFormLayout;
    layout->addWidget(note_);
    layout->addLayout(form_);
    rebuild();
}

void FieldMapEditor::setKeys(const moe::train::DatasetKeys& keys) {
    if (keys.record == keys_.record && keys.turn == keys_.turn) return;
    keys_ = keys;
    rebuild();
}

void FieldMapEditor::setFormat(const QString& format) {
    if (format == format_) return;
    format_ = format;
    rebuild();
}

QString FieldMapEditor::guessedFormat() const {
    // Only which rows to show: the loader detects the format itself (through the map).
    if (has(keys_.record, "conversations") || has(keys_.turn, "from")) return "sharegpt";
    if (has(keys_.record, "messages") || !keys_.turn.empty()) return "messages";
    // One field can only be a document (Alpaca needs an instruction and an output).
    if (keys_.record.size() <= 1) return "text";
    return "alpaca";
}

moe::train::FieldMap FieldMapEditor::map() const {
    return map_;
}

void FieldMapEditor::setMap(const moe::train::FieldMap& map) {
    map_ = map;
    rebuild();
}

void FieldMapEditor::rebuild() {
    rebuilding_ = true;
    while (form_->rowCount() > 0) form_->removeRow(0);
    boxes_.clear();
    shown_ = format_ == "auto" ? guessedFormat() : format_;
    note_->setText(tr("Fields of the %1 format, read from the dataset's keys (empty: the "
                      "expected name):")
                       .arg(shown_));
    for (const Row& r : rows_of(shown_)) {
        const QString expected = QString::fromLatin1(r.expected);
        auto* box = new QComboBox;
        box->setEditable(true);  // a key missing from the first record can be typed
        box->addItem(QString());
        const auto& keys = r.where == Where::Record ? keys_.record : keys_.turn;
        if (r.where != Where::Tag)
            for (const std::string& k : keys) box->addItem(QString::fromStdString(k));
        const std::string mine = map_.tag(r.expected);
        box->setCurrentText(QString::fromStdString(mine));
        box->lineEdit()->setPlaceholderText(r.where == Where::Tag ? tr("role value") : expected);
        for (const auto& [name, what] : moe::train::field_map_names())
            if (name == r.expected) box->setToolTip(QString::fromStdString(what));
        connect(box, &QComboBox::currentTextChanged, this, [this, expected](const QString& t) {
            if (rebuilding_) return;
            const std::string v = t.trimmed().toStdString();
            // The expected name itself, or nothing, is no mapping.
            if (v.empty() || v == expected.toStdString())
                map_.names.erase(expected.toStdString());
            else
                map_.names[expected.toStdString()] = v;
            emit changed();
        });
        form_->addRow(expected, box);
        boxes_.insert(expected, box);
    }
    rebuilding_ = false;
}

}  // namespace moeui
