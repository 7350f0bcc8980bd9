#include "model_map.h"

#include <QFile>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHelpEvent>
#include <QLabel>
#include <QMouseEvent>
#include <QPainter>
#include <QPushButton>
#include <QScrollArea>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <nlohmann/json.hpp>

#include "format.h"
#include "hybrid/placement.h"

namespace moeui {

namespace {

constexpr int kLeft = 54;  // room for "L12"
constexpr int kTop = 6;

}  // namespace

ModelMapView::ModelMapView(QWidget* parent) : QWidget(parent) {
    setObjectName("modelMapView");
    setMouseTracking(true);
}

void ModelMapView::set_data(const ModelMapData& d) {
    data_ = d;
    int widest = 0;
    for (const auto& l : d.layers) widest = std::max(widest, int(l.expert_gpu.size()));
    cell_ = widest > 96 ? 6 : widest > 48 ? 8 : 12;
    updateGeometry();
    update();
}

QSize ModelMapView::sizeHint() const {
    int widest = 0;
    for (const auto& l : data_.layers) widest = std::max(widest, int(l.expert_gpu.size()));
    return {kLeft + (widest + 3) * cell_ + 8, kTop + int(data_.layers.size()) * cell_ + 8};
}

QRect ModelMapView::cell(int layer, int column) const {
    const int gap = column >= 2 ? cell_ : 0;  // a gap between the layer's parts and its experts
    return {kLeft + column * cell_ + gap, kTop + layer * cell_, cell_ - 1, cell_ - 1};
}

void ModelMapView::paintEvent(QPaintEvent*) {
    QPainter p(this);
    const QColor gpu(46, 160, 67), cpu(110, 118, 129);
    const QColor text = palette().color(QPalette::WindowText);
    QFont f = font();
    f.setPixelSize(std::max(7, cell_ - 2));
    p.setFont(f);
    quint64 hottest = 1;
    for (const auto& l : data_.layers)
        for (quint64 c : l.expert_count) hottest = std::max(hottest, c);
    for (int i = 0; i < data_.layers.size(); ++i) {
        const LayerMapRow& l = data_.layers[i];
        if (i % std::max(1, 12 / cell_ * 2) == 0 || cell_ >= 10) {
            p.setPen(text);
            p.drawText(QRect(0, kTop + i * cell_, kLeft - 6, cell_),
                       Qt::AlignRight | Qt::AlignVCenter, QString("L%1").arg(i));
        }
        p.fillRect(cell(i, 0), l.attention_gpu ? gpu : cpu);
        p.fillRect(cell(i, 1), l.dense_gpu ? gpu : cpu);
        for (int e = 0; e < l.expert_gpu.size(); ++e) {
            QColor c = l.expert_gpu[e] ? gpu : cpu;
            // Shade by use: unused experts pale, the hottest at full colour.
            const double share = data_.routed ? double(l.expert_count[e]) / double(hottest) : 1.0;
            c.setAlphaF(0.15 + 0.85 * share);
            p.fillRect(cell(i, 2 + e), c);
        }
    }
}

QString ModelMapView::describe(const QPoint& pos) const {
    for (int i = 0; i < data_.layers.size(); ++i) {
        const LayerMapRow& l = data_.layers[i];
        if (cell(i, 0).contains(pos))
            return tr("layer %1: attention on the %2").arg(i).arg(l.attention_gpu ? "GPU" : "CPU");
        if (cell(i, 1).contains(pos))
            return tr("layer %1: dense / shared part on the %2")
                .arg(i)
                .arg(l.dense_gpu ? "GPU" : "CPU");
        for (int e = 0; e < l.expert_gpu.size(); ++e)
            if (cell(i, 2 + e).contains(pos))
                return tr("layer %1, expert %2: on the %3, chosen %4 times")
                    .arg(i)
                    .arg(e)
                    .arg(l.expert_gpu[e] ? "GPU" : "CPU")
                    .arg(l.expert_count[e]);
    }
    return {};
}

QPair<int, int> ModelMapView::expert_at(const QPoint& pos) const {
    for (int i = 0; i < data_.layers.size(); ++i)
        for (int e = 0; e < data_.layers[i].expert_gpu.size(); ++e)
            if (cell(i, 2 + e).contains(pos)) return {i, e};
    return {-1, -1};
}

void ModelMapView::mousePressEvent(QMouseEvent* e) {
    const auto at = expert_at(e->position().toPoint());
    if (!editable_ || e->button() != Qt::LeftButton || at.first < 0) return;
    drag_start_ = at;
    before_drag_ = data_.layers;
    drag_gpu_ = !data_.layers[at.first].expert_gpu[at.second];
    drag_to(e->position().toPoint());
}

void ModelMapView::mouseMoveEvent(QMouseEvent* e) {
    if (drag_start_.first >= 0 && (e->buttons() & Qt::LeftButton)) drag_to(e->position().toPoint());
}

void ModelMapView::drag_to(const QPoint& pos) {
    const auto at = expert_at(pos);
    if (at.first < 0) return;
    data_.layers = before_drag_;
    const int l0 = std::min(drag_start_.first, at.first),
              l1 = std::max(drag_start_.first, at.first);
    const int e0 = std::min(drag_start_.second, at.second),
              e1 = std::max(drag_start_.second, at.second);
    for (int l = l0; l <= l1; ++l)
        for (int e = e0; e <= e1 && e < data_.layers[l].expert_gpu.size(); ++e)
            data_.layers[l].expert_gpu[e] = drag_gpu_;
    update();
    emit edited();
}

bool ModelMapView::event(QEvent* e) {
    if (e->type() == QEvent::ToolTip) {
        auto* help = static_cast<QHelpEvent*>(e);
        const QString text = describe(help->pos());
        if (text.isEmpty()) {
            QToolTip::hideText();
        } else {
            QToolTip::showText(help->globalPos(), text, this);
        }
        return true;
    }
    return QWidget::event(e);
}

ModelMapDialog::ModelMapDialog(QWidget* parent) : QDialog(parent) {
    setObjectName("modelMap");
    setWindowTitle(tr("Model map"));
    resize(900, 600);
    auto* v = new QVBoxLayout(this);
    caption_ = new QLabel(this);
    caption_->setWordWrap(true);
    auto* scroll = new QScrollArea(this);
    view_ = new ModelMapView(scroll);
    scroll->setWidget(view_);
    scroll->setWidgetResizable(false);
    v->addWidget(caption_);
    v->addWidget(scroll, 1);
    auto* legend = new QLabel(
        tr("<span style='color:#2ea043'>■</span> GPU &nbsp; <span style='color:#6e7681'>■</span> "
           "CPU &nbsp; — per layer: attention, dense/shared, then each routed expert, paler the "
           "less the router chose it"),
        this);
    v->addWidget(legend);
    // Editing: click or drag over experts, then save the placement or apply it to the loaded
    // model (experts move between CPU and GPU without reloading it).
    view_->set_editable(true);
    connect(view_, &ModelMapView::edited, this, [this] {
        edited_ = true;
        update_caption();
    });
    auto* buttons = new QHBoxLayout();
    status_ = new QLabel(this);
    status_->setObjectName("placementStatus");
    auto* save = new QPushButton(tr("Save placement..."), this);
    auto* apply = new QPushButton(tr("Apply"), this);
    apply->setObjectName("applyPlacement");
    buttons->addWidget(status_, 1);
    buttons->addWidget(save);
    buttons->addWidget(apply);
    v->addLayout(buttons);
    connect(save, &QPushButton::clicked, this, [this] {
        const QString f =
            QFileDialog::getSaveFileName(this, tr("Save placement"), {}, tr("Placement (*.json)"));
        if (!f.isEmpty()) save_placement(f);
    });
    connect(apply, &QPushButton::clicked, this, [this] {
        const QString json = edited_placement();
        if (json.isEmpty()) return;
        const ModelMapData& d = view_->data();
        if (d.gpu_budget > 0 && gpu_bytes() > d.gpu_budget) {  // refused here, with the reason
            status_->setText(tr("Does not fit: %1 of weights on the GPU, the budget is %2")
                                 .arg(gib(gpu_bytes()), gib(d.gpu_budget)));
            return;
        }
        status_->setText(tr("Applying..."));
        emit applyRequested(json);
    });
}

QString ModelMapDialog::edited_placement() const {
    const ModelMapData& d = view_->data();
    if (d.placement_json.isEmpty()) return {};
    try {
        moe::Placement p = moe::Placement::from_json(
            nlohmann::json::parse(d.placement_json.toStdString()), "placement");
        for (int i = 0; i < d.layers.size() && size_t(i) < p.layers.size(); ++i)
            for (int e = 0; e < d.layers[i].expert_gpu.size(); ++e)
                if (size_t(e) < p.layers[size_t(i)].experts.size())
                    p.layers[size_t(i)].experts[size_t(e)] =
                        d.layers[i].expert_gpu[e] ? moe::Device::Gpu : moe::Device::Cpu;
        return QString::fromStdString(p.to_json().dump(1));
    } catch (const std::exception&) {
        return {};
    }
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

void ModelMapDialog::applied(const QString& error) {
    status_->setText(error.isEmpty() ? tr("Applied: the experts moved") : error);
    if (error.isEmpty()) edited_ = false;
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

void ModelMapDialog::update_caption() {
    const ModelMapData& d = view_->data();
    int gpu = 0, all = 0;
    for (const auto& l : d.layers) {
        all += l.expert_gpu.size();
        gpu += int(std::count(l.expert_gpu.begin(), l.expert_gpu.end(), true));
    }
    caption_->setText(
        d.title +
        (d.routed ? tr(" · %1 expert choices counted").arg(d.routed)
                  : tr(" · no tokens routed yet")) +
        tr(" · %1 of %2 routed experts on the GPU").arg(gpu).arg(all) +
        tr(" · GPU weights %1%2")
            .arg(gib(gpu_bytes()))
            .arg(d.gpu_budget ? tr(" of a %1 budget%2")
                                    .arg(gib(d.gpu_budget))
                                    .arg(gpu_bytes() > d.gpu_budget ? tr(", over it") : QString())
                              : QString()) +
        (edited_ ? tr(" (edited, not applied)") : QString()));
}

void ModelMapDialog::set_data(const ModelMapData& d) {
    view_->set_data(d);
    view_->resize(view_->sizeHint());
    edited_ = false;
    update_caption();
}

}  // namespace moeui
