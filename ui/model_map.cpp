#include "model_map.h"

#include <QAction>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFile>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QInputDialog>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QScrollBar>
#include <QToolButton>
#include <QUndoStack>
#include <QVBoxLayout>
#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "budget_bar.h"
#include "expert_assignment.h"
#include "format.h"
#include "hybrid/placement.h"
#include "placement_export_dialog.h"
#include "speed_panel.h"

namespace moeui {

namespace {

constexpr double kGiB = double(quint64(1) << 30);

std::optional<moe::Placement> parse(const QString& json) {
    try {
        return moe::Placement::from_json(nlohmann::json::parse(json.toStdString()), "placement");
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

}  // namespace

ModelMapDialog::ModelMapDialog(QWidget* parent) : QDialog(parent) {
    setObjectName("modelMap");
    setWindowTitle(tr("Model map"));
    resize(1000, 680);
    undo_ = new QUndoStack(this);
    auto* v = new QVBoxLayout(this);
    caption_ = new QLabel(this);
    caption_->setWordWrap(true);
    v->addWidget(caption_);
    v->addWidget(make_tools());
    bar_ = new BudgetBar(this);
    v->addWidget(bar_);
    speed_ = new SpeedPanel(this);
    speed_->set_placement_source([this] { return edited_placement(); });
    connect(speed_, &SpeedPanel::predictRequested, this, &ModelMapDialog::predictRequested);
    connect(speed_, &SpeedPanel::calibrateRequested, this, &ModelMapDialog::calibrateRequested);
    v->addWidget(speed_);
    scroll_ = new QScrollArea(this);
    view_ = new ModelMapView(scroll_);
    scroll_->setWidget(view_);
    scroll_->setWidgetResizable(false);
    v->addWidget(scroll_, 1);
    auto* legend = new QLabel(
        tr("<span style='color:#2ea043'>■</span> GPU &nbsp; <span style='color:#6e7681'>■</span> "
           "CPU &nbsp; — per layer: attention, dense/shared, then each routed expert, paler the "
           "less the router chose it · Ctrl+wheel zooms"),
        this);
    v->addWidget(legend);
    // Editing: click or drag over experts, then save the placement or apply it to the loaded
    // model (experts move between CPU and GPU without reloading it).
    view_->set_editable(true);
    connect(view_, &ModelMapView::edited, this, [this] {
        update_caption();
        update_budget();
        speed_->placement_changed();
    });
    connect(view_, &ModelMapView::assigned, this,
            [this](const ExpertGrid& before, const ExpertGrid& after, const QString& what) {
                undo_->push(new ExpertAssignment(view_, before, after, what));
            });
    connect(view_, &ModelMapView::zoomRequested, this, &ModelMapDialog::zoom);
    connect(undo_, &QUndoStack::cleanChanged, this, [this] { update_caption(); });

    auto* buttons = new QHBoxLayout();
    status_ = new QLabel(this);
    status_->setObjectName("placementStatus");
    status_->setWordWrap(true);
    auto* save = new QPushButton(tr("Save placement..."), this);
    auto* export_button = new QPushButton(tr("Export..."), this);
    export_button->setObjectName("exportPlacement");
    export_button->setToolTip(tr("The edited placement as llama.cpp or sglang-kt options"));
    apply_ = new QPushButton(tr("Apply"), this);
    apply_->setObjectName("applyPlacement");
    buttons->addWidget(status_, 1);
    buttons->addWidget(save);
    buttons->addWidget(export_button);
    buttons->addWidget(apply_);
    v->addLayout(buttons);
    connect(save, &QPushButton::clicked, this, [this] {
        const QString f =
            QFileDialog::getSaveFileName(this, tr("Save placement"), {}, tr("Placement (*.json)"));
        if (!f.isEmpty()) save_placement(f);
    });
    connect(export_button, &QPushButton::clicked, this, [this] { export_placement(); });
    connect(apply_, &QPushButton::clicked, this, [this] {
        const QString json = edited_placement();
        if (json.isEmpty()) return;
        if (!bar_->fits()) {  // the button is disabled then; refused here all the same
            status_->setText(bar_->reason());
            return;
        }
        status_->setText(tr("Applying..."));
        emit applyRequested(json);
    });
    update_budget();
}

QWidget* ModelMapDialog::make_tools() {
    auto* tools = new QWidget(this);
    auto* h = new QHBoxLayout(tools);
    h->setContentsMargins(0, 0, 0, 0);

    presets_ = new QComboBox(tools);
    presets_->setObjectName("presetCombo");
    presets_->setToolTip(tr("Fill the GPU budget with experts chosen by a planner strategy"));
    presets_->addItem(tr("Preset..."));
    const QList<QPair<QString, QString>> strategies = {
        {"uniform", tr("Uniform: the same number in every layer")},
        {"frequency", tr("Frequency: the most used experts (telemetry)")},
        {"front", tr("Front: whole layers from the first")},
        {"back", tr("Back: whole layers from the last")},
        {"balanced", tr("Balanced: each layer's most used in turn")}};
    for (const auto& [key, label] : strategies) presets_->addItem(label, key);
    connect(presets_, &QComboBox::activated, this, [this](int i) {
        const QString key = presets_->itemData(i).toString();
        presets_->setCurrentIndex(0);
        if (!key.isEmpty()) request_preset(key);
    });
    h->addWidget(presets_);

    h->addWidget(new QLabel(tr("GPU budget"), tools));
    budget_box_ = new QDoubleSpinBox(tools);
    budget_box_->setObjectName("budgetBox");
    budget_box_->setDecimals(3);
    budget_box_->setRange(0.0, 65536.0);
    budget_box_->setSingleStep(0.5);
    budget_box_->setSuffix(tr(" GiB"));
    budget_box_->setSpecialValueText(tr("none"));
    budget_box_->setToolTip(
        tr("The GPU memory the weights may take: presets fill it, edits over it are refused"));
    connect(budget_box_, &QDoubleSpinBox::valueChanged, this, [this](double gib) {
        budget_ = quint64(gib * kGiB);
        update_budget();
    });
    h->addWidget(budget_box_);

    QAction* undo = undo_->createUndoAction(this, tr("Undo"));
    undo->setShortcut(QKeySequence::Undo);
    QAction* redo = undo_->createRedoAction(this, tr("Redo"));
    redo->setShortcuts({QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_Z), QKeySequence::Redo});
    auto* zoom_in = new QAction(tr("+"), this);
    zoom_in->setObjectName("zoomIn");
    zoom_in->setToolTip(tr("Zoom in (Ctrl+wheel)"));
    zoom_in->setShortcut(QKeySequence::ZoomIn);
    auto* zoom_out = new QAction(tr("-"), this);
    zoom_out->setObjectName("zoomOut");
    zoom_out->setToolTip(tr("Zoom out (Ctrl+wheel)"));
    zoom_out->setShortcut(QKeySequence::ZoomOut);
    // Buttons zoom around the middle of what is shown.
    auto centre = [this] {
        return view_->mapFrom(scroll_->viewport(), scroll_->viewport()->rect().center());
    };
    connect(zoom_in, &QAction::triggered, this, [this, centre] { zoom(1, centre()); });
    connect(zoom_out, &QAction::triggered, this, [this, centre] { zoom(-1, centre()); });
    undo->setObjectName("undoAction");
    redo->setObjectName("redoAction");
    // The stack renames its actions after each step ("Undo Preset: front"): the buttons keep a
    // short label and show that text as their tooltip instead.
    for (const auto& [a, label] : {std::pair{undo, tr("Undo")}, std::pair{redo, tr("Redo")},
                                   std::pair{zoom_out, tr("-")}, std::pair{zoom_in, tr("+")}}) {
        addAction(a);  // the shortcuts work anywhere in the dialog
        auto* b = new QToolButton(tools);
        b->setObjectName(a->objectName() + "Button");
        b->setText(label);
        b->setEnabled(a->isEnabled());
        b->setToolTip(a->toolTip());
        connect(b, &QToolButton::clicked, a, &QAction::trigger);
        connect(a, &QAction::changed, b, [a, b] {
            b->setEnabled(a->isEnabled());
            b->setToolTip(a->text());
        });
        h->addWidget(b);
    }
    h->addStretch(1);

    profile_box_ = new QComboBox(tools);
    profile_box_->setObjectName("profileCombo");
    profile_box_->setToolTip(tr("Named placements of this model, kept in MoE Studio's database"));
    profile_box_->setMinimumContentsLength(12);
    profile_box_->addItem(tr("Profiles..."));
    connect(profile_box_, &QComboBox::activated, this, [this](int i) {
        if (i > 0) load_profile(profile_box_->itemText(i));
    });
    auto* save_as = new QPushButton(tr("Save as profile..."), tools);
    save_as->setObjectName("saveProfile");
    connect(save_as, &QPushButton::clicked, this, [this] {
        bool ok = false;
        const QString name = QInputDialog::getText(
            this, tr("Save as profile"), tr("Profile name:"), QLineEdit::Normal,
            profile_box_->currentIndex() > 0 ? profile_box_->currentText() : QString(), &ok);
        if (ok) save_profile(name);
    });
    auto* remove = new QPushButton(tr("Delete profile"), tools);
    remove->setObjectName("deleteProfile");
    connect(remove, &QPushButton::clicked, this, [this] {
        if (profile_box_->currentIndex() > 0) delete_profile(profile_box_->currentText());
    });
    h->addWidget(profile_box_);
    h->addWidget(save_as);
    h->addWidget(remove);
    return tools;
}

QString ModelMapDialog::edited_placement() const {
    const ModelMapData& d = view_->data();
    if (d.placement_json.isEmpty()) return {};
    std::optional<moe::Placement> p = parse(d.placement_json);
    if (!p) return {};
    for (int i = 0; i < d.layers.size() && size_t(i) < p->layers.size(); ++i)
        for (int e = 0; e < d.layers[i].expert_gpu.size(); ++e)
            if (size_t(e) < p->layers[size_t(i)].experts.size())
                p->layers[size_t(i)].experts[size_t(e)] =
                    d.layers[i].expert_gpu[e] ? moe::Device::Gpu : moe::Device::Cpu;
    return QString::fromStdString(p->to_json().dump(1));
}

bool ModelMapDialog::save_placement(const QString& path) {
    const QString json = edited_placement();
    QFile f(path);
    if (json.isEmpty() || !f.open(QIODevice::WriteOnly)) {
        status_->setText(tr("Could not save %1").arg(path));
        return false;
    }
    f.write(json.toUtf8());
    status_->setText(tr("Saved to %1").arg(path));
    return true;
}

PlacementExportDialog* ModelMapDialog::export_placement() {
    const QString json = edited_placement();
    if (json.isEmpty()) {
        status_->setText(tr("No placement to export"));
        return nullptr;
    }
    auto* d = new PlacementExportDialog(json, view_->data().routed > 0, this);
    d->setAttribute(Qt::WA_DeleteOnClose);
    d->show();
    return d;
}

void ModelMapDialog::set_budget(quint64 bytes) {
    budget_ = bytes;
    const QSignalBlocker block(budget_box_);
    budget_box_->setValue(double(bytes) / kGiB);
    update_budget();
}

void ModelMapDialog::request_preset(const QString& strategy) {
    const QString json = edited_placement();
    if (json.isEmpty()) return;
    status_->setText(tr("Planning the %1 preset...").arg(strategy));
    emit presetRequested(strategy, budget_, json);
}

void ModelMapDialog::preset_planned(const QString& strategy, const QString& placement_json,
                                    const QString& error) {
    if (!error.isEmpty()) {
        status_->setText(tr("Preset %1: %2").arg(strategy, error));
        return;
    }
    if (adopt(placement_json, tr("Preset: %1").arg(strategy)))
        status_->setText(tr("Preset %1 for a %2 budget").arg(strategy, size_text(budget_)));
}

void ModelMapDialog::save_profile(const QString& name) {
    const QString json = edited_placement();
    if (json.isEmpty() || name.trimmed().isEmpty()) return;
    status_->setText(tr("Saving profile %1...").arg(name.trimmed()));
    emit profileSaveRequested(name.trimmed(), json);
}

void ModelMapDialog::load_profile(const QString& name) {
    status_->setText(tr("Loading profile %1...").arg(name));
    emit profileLoadRequested(name);
}

void ModelMapDialog::delete_profile(const QString& name) {
    emit profileDeleteRequested(name);
}

void ModelMapDialog::set_profiles(const QStringList& names) {
    profiles_ = names;
    const QString current = profile_box_->currentIndex() > 0 ? profile_box_->currentText() : "";
    const QSignalBlocker block(profile_box_);
    while (profile_box_->count() > 1) profile_box_->removeItem(1);
    profile_box_->addItems(names);
    profile_box_->setCurrentIndex(std::max(0, int(names.indexOf(current)) + 1));
}

void ModelMapDialog::profile_loaded(const QString& name, const QString& placement_json,
                                    const QString& error) {
    if (!error.isEmpty() || placement_json.isEmpty()) {
        status_->setText(error.isEmpty() ? tr("No profile %1 for this model").arg(name)
                                         : tr("Profile %1: %2").arg(name, error));
        return;
    }
    // Only the experts are taken: the attention and head stay where the model was loaded.
    if (adopt(placement_json, tr("Load profile %1").arg(name)))
        status_->setText(tr("Profile %1 loaded (experts only)").arg(name));
    const QSignalBlocker block(profile_box_);
    profile_box_->setCurrentIndex(std::max(0, int(profiles_.indexOf(name)) + 1));
}

void ModelMapDialog::profile_changed(const QString& name, const QString& error) {
    status_->setText(error.isEmpty() ? tr("Profiles updated (%1)").arg(name)
                                     : tr("Profile %1: %2").arg(name, error));
}

bool ModelMapDialog::adopt(const QString& placement_json, const QString& what) {
    const std::optional<moe::Placement> p = parse(placement_json);
    if (!p) {
        status_->setText(tr("%1: not a placement").arg(what));
        return false;
    }
    const ExpertGrid before = view_->experts();
    ExpertGrid after = before;
    for (int i = 0; i < after.size() && size_t(i) < p->layers.size(); ++i) {
        const auto& experts = p->layers[size_t(i)].experts;
        if (experts.size() != size_t(after[i].size())) {
            status_->setText(tr("%1: made for another model").arg(what));
            return false;
        }
        for (int e = 0; e < after[i].size(); ++e)
            after[i][e] = experts[size_t(e)] == moe::Device::Gpu;
    }
    if (after == before) {
        status_->setText(tr("%1: no change").arg(what));
        return false;
    }
    undo_->push(new ExpertAssignment(view_, before, after, what));
    return true;
}

void ModelMapDialog::zoom(int steps, const QPoint& anchor) {
    const int old = view_->cell_size();
    const int now = ModelMapView::zoomed(old, steps);
    if (now == old) return;
    // Keep the content under `anchor` where it is on screen.
    const QPoint on_screen = view_->mapTo(scroll_->viewport(), anchor);
    view_->set_cell_size(now);
    const double k = double(now) / double(old);
    scroll_->horizontalScrollBar()->setValue(int(anchor.x() * k) - on_screen.x());
    scroll_->verticalScrollBar()->setValue(int(anchor.y() * k) - on_screen.y());
}

void ModelMapDialog::applied(const QString& error) {
    status_->setText(error.isEmpty() ? tr("Applied: the experts moved") : error);
    if (error.isEmpty()) undo_->setClean();
    update_caption();
}

quint64 ModelMapDialog::gpu_bytes() const {
    const ModelMapData& d = view_->data();
    quint64 b = d.fixed_gpu_bytes;
    for (const auto& l : d.layers)
        for (int e = 0; e < l.expert_gpu.size() && e < l.expert_bytes.size(); ++e)
            if (l.expert_gpu[e]) b += l.expert_bytes[e];
    return b;
}

void ModelMapDialog::update_budget() {
    const ModelMapData& d = view_->data();
    BudgetFigures f;
    f.fixed_gpu = d.fixed_gpu_bytes;
    f.expert_gpu = gpu_bytes() - d.fixed_gpu_bytes;
    f.budget = budget_;
    f.total = d.total_bytes;
    bar_->set_figures(f);
    const bool can = bar_->fits() && !d.placement_json.isEmpty();
    apply_->setEnabled(can);
    apply_->setToolTip(bar_->fits() ? tr("Move the loaded model's experts as the map shows")
                                    : bar_->reason());
}

void ModelMapDialog::update_caption() {
    const ModelMapData& d = view_->data();
    int gpu = 0, all = 0;
    for (const auto& l : d.layers) {
        all += l.expert_gpu.size();
        gpu += int(std::count(l.expert_gpu.begin(), l.expert_gpu.end(), true));
    }
    caption_->setText(d.title +
                      (d.routed ? tr(" · %1 expert choices counted").arg(d.routed)
                                : tr(" · no tokens routed yet")) +
                      tr(" · %1 of %2 routed experts on the GPU").arg(gpu).arg(all) +
                      tr(" · GPU weights %1%2")
                          .arg(size_text(gpu_bytes()))
                          .arg(budget_
                                   ? tr(" of a %1 budget%2")
                                         .arg(size_text(budget_))
                                         .arg(gpu_bytes() > budget_ ? tr(", over it") : QString())
                                   : QString()) +
                      (undo_->isClean() ? QString() : tr(" (edited, not applied)")));
}

void ModelMapDialog::set_data(const ModelMapData& d) {
    // A new budget only with a model loaded anew: one the user typed survives an Apply's
    // refresh of the map.
    const bool reloaded = !have_data_ || d.gpu_budget != view_->data().gpu_budget;
    view_->set_data(d);
    undo_->clear();
    have_data_ = true;
    if (reloaded) set_budget(d.gpu_budget);
    update_caption();
    update_budget();
    speed_->placement_changed();
    if (!d.placement_json.isEmpty()) emit profilesRequested();
}

}  // namespace moeui
