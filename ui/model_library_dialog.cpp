#include "model_library_dialog.h"

#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSettings>
#include <QTableWidget>
#include <QThread>
#include <QVBoxLayout>

#include "api/model_library.h"
#include "format.h"

namespace moeui {

namespace {

struct Row {
    moe::ModelEntry entry;
    moe::ModelDescription d;
};

QString count(int64_t n) {
    if (n >= 1000000000) return QString::number(double(n) / 1e9, 'f', 1) + " B";
    if (n >= 1000000) return QString::number(double(n) / 1e6, 'f', 1) + " M";
    return QString::number(n);
}

}  // namespace

ModelLibraryDialog::ModelLibraryDialog(QWidget* parent) : QDialog(parent) {
    setObjectName("modelLibrary");
    setWindowTitle(tr("Model library"));
    resize(980, 480);
    auto* v = new QVBoxLayout(this);
    table_ = new QTableWidget(0, 10, this);
    table_->setObjectName("modelTable");
    table_->setHorizontalHeaderLabels({tr("Model"), tr("From"), tr("Architecture"),
                                       tr("Parameters"), tr("Active"), tr("Experts"), tr("Type"),
                                       tr("Context"), tr("Size"), tr("Fits")});
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
    table_->verticalHeader()->hide();
    status_ = new QLabel(this);
    auto* buttons = new QHBoxLayout;
    auto* add = new QPushButton(tr("Add folder..."), this);
    auto* refresh = new QPushButton(tr("Rescan"), this);
    auto* load = new QPushButton(tr("Load"), this);
    load->setObjectName("loadModelButton");
    load->setDefault(true);
    buttons->addWidget(status_, 1);
    buttons->addWidget(add);
    buttons->addWidget(refresh);
    buttons->addWidget(load);
    v->addWidget(table_);
    v->addLayout(buttons);
    const auto load_selected = [this] {
        const int r = table_->currentRow();
        if (r < 0 || !table_->item(r, 0)) return;
        emit loadRequested(table_->item(r, 0)->data(Qt::UserRole).toString());
        accept();
    };
    connect(load, &QPushButton::clicked, this, load_selected);
    connect(table_, &QTableWidget::cellDoubleClicked, this, load_selected);
    connect(refresh, &QPushButton::clicked, this, &ModelLibraryDialog::rescan);
    connect(add, &QPushButton::clicked, this, &ModelLibraryDialog::add_folder);
    rescan();
}

ModelLibraryDialog::~ModelLibraryDialog() {
    if (scan_) scan_->wait();  // the scan only reads headers: it ends soon
}

QStringList ModelLibraryDialog::user_folders() {
    return QSettings().value("library/folders").toStringList();
}

void ModelLibraryDialog::add_folder() {
    const QString d = QFileDialog::getExistingDirectory(this, tr("Folder with models"));
    if (d.isEmpty()) return;
    QStringList folders = user_folders();
    if (!folders.contains(d)) folders.push_back(d);
    QSettings().setValue("library/folders", folders);
    rescan();
}

void ModelLibraryDialog::rescan() {
    if (scan_ && scan_->isRunning()) return;
    status_->setText(tr("Looking for models..."));
    std::vector<std::string> roots = moe::default_model_roots();
    for (const QString& f : user_folders()) roots.push_back(f.toStdString());
    auto rows = std::make_shared<std::vector<Row>>();
    delete scan_;
    scan_ = QThread::create([roots, rows] {
        for (auto& e : moe::discover_models(roots))
            rows->push_back({e, moe::describe_model(e.path)});
    });
    connect(scan_, &QThread::finished, this, [this, rows] {
        table_->setRowCount(int(rows->size()));
        for (int i = 0; i < int(rows->size()); ++i) {
            const Row& r = (*rows)[size_t(i)];
            const moe::ModelDescription& d = r.d;
            const QString fits = !d.error.empty() ? tr("cannot read")
                                 : d.fits_vram    ? tr("RAM, VRAM")
                                 : d.fits_ram     ? tr("RAM")
                                                  : tr("no");
            const QStringList cells = {
                QString::fromStdString(r.entry.name),
                QString::fromStdString(r.entry.source),
                d.error.empty() ? QString::fromStdString(d.architecture)
                                : QString::fromStdString(d.error).left(60),
                count(d.params_total),
                count(d.params_active),
                d.experts ? QString("%1, top-%2").arg(d.experts).arg(d.experts_per_token)
                          : tr("dense"),
                QString::fromStdString(d.dtype),
                d.context ? QString::number(d.context) : QString(),
                gib(d.file_bytes, 2),
                fits};
            for (int c = 0; c < cells.size(); ++c) {
                auto* item = new QTableWidgetItem(cells[c]);
                if (c == 0) {
                    item->setData(Qt::UserRole, QString::fromStdString(r.entry.path));
                    item->setToolTip(QString::fromStdString(r.entry.path));
                }
                table_->setItem(i, c, item);
            }
        }
        status_->setText(rows->empty() ? tr("No models found. Add a folder, or open a file from "
                                            "the File menu.")
                                       : tr("%n model(s)", nullptr, int(rows->size())));
        emit scanFinished(int(rows->size()));
    });
    scan_->start();
}

}  // namespace moeui
