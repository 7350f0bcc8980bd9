#include "placement_export_dialog.h"

#include <QCheckBox>
#include <QClipboard>
#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QGuiApplication>
#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QVBoxLayout>
#include <nlohmann/json.hpp>
#include <optional>

#include "hybrid/placement.h"
#include "hybrid/placement_export.h"

namespace moeui {

namespace {

std::optional<moe::Placement> parse(const QString& json) {
    try {
        return moe::Placement::from_json(nlohmann::json::parse(json.toStdString()), "placement");
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

bool write(const QString& path, const QByteArray& bytes) {
    QFile f(path);
    return f.open(QIODevice::WriteOnly | QIODevice::Truncate) && f.write(bytes) == bytes.size();
}

}  // namespace

PlacementExportDialog::PlacementExportDialog(const QString& placement_json, bool telemetry,
                                             QWidget* parent)
    : QDialog(parent), placement_(placement_json) {
    setObjectName("placementExport");
    setWindowTitle(tr("Export placement"));
    resize(720, 320);
    auto* v = new QVBoxLayout(this);
    auto* top = new QHBoxLayout();
    format_ = new QComboBox(this);
    format_->setObjectName("exportFormat");
    format_->addItem(tr("llama.cpp (-ot tensor overrides)"), int(LlamaCpp));
    format_->addItem(tr("SGLang with KTransformers (sglang-kt)"), int(SglangKt));
    frequency_ = new QCheckBox(tr("Experts chosen by frequency"), this);
    frequency_->setObjectName("exportFrequency");
    frequency_->setToolTip(
        tr("sglang-kt's --kt-expert-placement-strategy: frequency when the GPU experts follow "
           "expert telemetry, uniform otherwise"));
    frequency_->setChecked(telemetry);
    top->addWidget(format_, 1);
    top->addWidget(frequency_);
    v->addLayout(top);
    text_ = new QPlainTextEdit(this);
    text_->setObjectName("exportText");
    text_->setReadOnly(true);
    v->addWidget(text_, 1);
    note_ = new QLabel(this);
    note_->setObjectName("exportNote");
    note_->setWordWrap(true);
    v->addWidget(note_);
    auto* buttons = new QHBoxLayout();
    status_ = new QLabel(this);
    status_->setWordWrap(true);
    auto* copy = new QPushButton(tr("Copy"), this);
    copy->setObjectName("copyExport");
    auto* save = new QPushButton(tr("Save..."), this);
    save->setObjectName("saveExport");
    auto* close = new QPushButton(tr("Close"), this);
    buttons->addWidget(status_, 1);
    buttons->addWidget(copy);
    buttons->addWidget(save);
    buttons->addWidget(close);
    v->addLayout(buttons);
    connect(format_, &QComboBox::currentIndexChanged, this, [this] { update(); });
    connect(frequency_, &QCheckBox::toggled, this, [this] { update(); });
    connect(copy, &QPushButton::clicked, this, [this] {
        this->copy();
        status_->setText(tr("Copied to the clipboard"));
    });
    connect(save, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getSaveFileName(this, tr("Save options"), {},
                                                       tr("Text (*.txt);;All files (*)"));
        if (!f.isEmpty()) this->save(f);
    });
    connect(close, &QPushButton::clicked, this, &QDialog::close);
    update();
}

void PlacementExportDialog::set_format(Format f) {
    format_->setCurrentIndex(format_->findData(int(f)));
}

QString PlacementExportDialog::options() const {
    return text_->toPlainText();
}

QString PlacementExportDialog::note() const {
    return note_->text();
}

void PlacementExportDialog::copy() const {
    QGuiApplication::clipboard()->setText(options());
}

QString PlacementExportDialog::experts_path(const QString& options_path) {
    const QFileInfo fi(options_path);
    return fi.dir().filePath(fi.completeBaseName() + ".gpu-experts.json");
}

void PlacementExportDialog::update() {
    const std::optional<moe::Placement> p = parse(placement_);
    const bool kt = format_->currentData().toInt() == SglangKt;
    frequency_->setEnabled(kt);  // llama.cpp has no such choice
    if (!p) {
        text_->clear();
        note_->setText(tr("No placement to export"));
        return;
    }
    const moe::ExportedPlacement e =
        kt ? moe::export_sglang_kt(*p, frequency_->isChecked()) : moe::export_llama_cpp(*p);
    text_->setPlainText(QString::fromStdString(e.options));
    note_->setText(QString::fromStdString(e.note));
    status_->clear();
}

bool PlacementExportDialog::save(const QString& path) {
    const std::optional<moe::Placement> p = parse(placement_);
    bool ok = p && write(path, (options() + "\n").toUtf8());
    QString what = tr("Saved to %1").arg(path);
    if (ok && format_->currentData().toInt() == SglangKt) {
        const QString experts = experts_path(path);
        ok = write(experts, QByteArray::fromStdString(moe::sglang_kt_experts(*p).dump() + "\n"));
        what = tr("Saved to %1, the per-layer GPU experts to %2").arg(path, experts);
    }
    status_->setText(ok ? what : tr("Could not save %1").arg(path));
    return ok;
}

}  // namespace moeui
