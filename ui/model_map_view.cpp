#include "model_map_view.h"

#include <QHelpEvent>
#include <QMouseEvent>
#include <QPaintEvent>
#include <QPainter>
#include <QToolTip>
#include <QWheelEvent>
#include <algorithm>
#include <array>

namespace moeui {

namespace {

constexpr int kLeft = 54;  // room for "L12"
constexpr int kTop = 6;
// Zoom steps: fine where cells are small, so 384 experts fit a screen at the low end.
constexpr std::array<int, 12> kCells = {3, 4, 5, 6, 8, 10, 12, 14, 16, 20, 24, 32};

}  // namespace

ModelMapView::ModelMapView(QWidget* parent) : QWidget(parent) {
    setObjectName("modelMapView");
    setMouseTracking(true);
}

int ModelMapView::widest() const {
    int w = 0;
    for (const auto& l : data_.layers) w = std::max(w, int(l.expert_gpu.size()));
    return w;
}

void ModelMapView::set_data(const ModelMapData& d) {
    data_ = d;
    const int w = widest();
    // Start at a size that shows small models legibly and large ones whole in width.
    cell_ = w > 96 ? 6 : w > 48 ? 8 : w > 8 ? 12 : 24;
    if (data_.layers.size() > 40) cell_ = std::min(cell_, 12);
    resize(sizeHint());
    updateGeometry();
    update();
}

QSize ModelMapView::sizeHint() const {
    return {kLeft + (widest() + 3) * cell_ + 8, kTop + int(data_.layers.size()) * cell_ + 8};
}

int ModelMapView::zoomed(int cell, int steps) {
    // The step at or above `cell`, then `steps` on.
    int i = 0;
    while (i + 1 < int(kCells.size()) && kCells[size_t(i)] < cell) ++i;
    i = std::clamp(i + steps, 0, int(kCells.size()) - 1);
    return kCells[size_t(i)];
}

void ModelMapView::set_cell_size(int px) {
    px = std::clamp(px, kMinCell, kMaxCell);
    if (px == cell_) return;
    cell_ = px;
    resize(sizeHint());
    updateGeometry();
    update();
}

QRect ModelMapView::cell(int layer, int column) const {
    const int gap = column >= 2 ? cell_ : 0;  // a gap between the layer's parts and its experts
    return {kLeft + column * cell_ + gap, kTop + layer * cell_, cell_ - 1, cell_ - 1};
}

QPoint ModelMapView::expert_center(int layer, int expert) const {
    return cell(layer, 2 + expert).center();
}

QPair<int, int> ModelMapView::cell_at(const QPoint& pos) const {
    const int x = pos.x() - kLeft, y = pos.y() - kTop;
    if (x < 0 || y < 0) return {-1, -1};
    const int layer = y / cell_;
    if (layer >= data_.layers.size() || y % cell_ > cell_ - 2) return {-1, -1};
    int column = -1;
    if (x < 2 * cell_) {
        column = x / cell_;
    } else if (x >= 3 * cell_) {
        column = 2 + (x - 3 * cell_) / cell_;
        if (column - 2 >= data_.layers[layer].expert_gpu.size()) return {-1, -1};
    }
    if (column < 0 || x % cell_ > cell_ - 2) return {-1, -1};
    return {layer, column};
}

QPair<int, int> ModelMapView::expert_at(const QPoint& pos) const {
    const auto [layer, column] = cell_at(pos);
    return column >= 2 ? QPair<int, int>{layer, column - 2} : QPair<int, int>{-1, -1};
}

void ModelMapView::paintEvent(QPaintEvent* e) {
    QPainter p(this);
    const QColor gpu(46, 160, 67), cpu(110, 118, 129);
    const QColor text = palette().color(QPalette::WindowText);
    QFont f = font();
    f.setPixelSize(std::clamp(cell_ - 2, 7, 11));
    p.setFont(f);
    quint64 hottest = 1;
    for (const auto& l : data_.layers)
        for (quint64 c : l.expert_count) hottest = std::max(hottest, c);
    // Only the rows and columns the paint event exposes: a scrolled 61 x 384 map repaints a
    // window's worth of cells, not all 23,000.
    const QRect r = e->rect();
    const int first = std::max(0, (r.top() - kTop) / cell_);
    const int last = std::min(int(data_.layers.size()) - 1, (r.bottom() - kTop) / cell_);
    const int e_first = std::max(0, (r.left() - kLeft) / cell_ - 3);
    const int e_last = (r.right() - kLeft) / cell_ - 2;
    const int label_every = std::max(1, (11 + cell_ - 1) / cell_);  // labels ~11 px apart
    for (int i = first; i <= last; ++i) {
        const LayerMapRow& l = data_.layers[i];
        if (i % label_every == 0) {
            p.setPen(text);
            p.drawText(QRect(0, kTop + i * cell_, kLeft - 6, std::max(cell_, 11)),
                       Qt::AlignRight | Qt::AlignTop, QString("L%1").arg(i));
        }
        p.fillRect(cell(i, 0), l.attention_gpu ? gpu : cpu);
        p.fillRect(cell(i, 1), l.dense_gpu ? gpu : cpu);
        const int end = std::min(int(l.expert_gpu.size()) - 1, e_last);
        for (int x = e_first; x <= end; ++x) {
            QColor c = l.expert_gpu[x] ? gpu : cpu;
            // Shade by use: unused experts pale, the hottest at full colour.
            const double share = data_.routed ? double(l.expert_count[x]) / double(hottest) : 1.0;
            c.setAlphaF(float(0.15 + 0.85 * share));
            p.fillRect(cell(i, 2 + x), c);
        }
    }
}

QString ModelMapView::describe(const QPoint& pos) const {
    const auto [i, column] = cell_at(pos);
    if (i < 0) return {};
    const LayerMapRow& l = data_.layers[i];
    if (column == 0)
        return tr("layer %1: attention on the %2").arg(i).arg(l.attention_gpu ? "GPU" : "CPU");
    if (column == 1)
        return tr("layer %1: dense / shared part on the %2")
            .arg(i)
            .arg(l.dense_gpu ? "GPU" : "CPU");
    const int e = column - 2;
    const QString where =
        tr("layer %1, expert %2: on the %3").arg(i).arg(e).arg(l.expert_gpu[e] ? "GPU" : "CPU");
    // Without telemetry a count of 0 would read as "never used"; say there is none instead.
    if (!data_.routed) return where + tr(" (no telemetry yet)");
    return where + tr(", chosen %1 times").arg(l.expert_count[e]);
}

ExpertGrid ModelMapView::experts() const {
    ExpertGrid g;
    g.reserve(data_.layers.size());
    for (const auto& l : data_.layers) g.push_back(l.expert_gpu);
    return g;
}

void ModelMapView::set_experts(const ExpertGrid& grid) {
    bool changed = false;
    for (int i = 0; i < data_.layers.size() && i < grid.size(); ++i) {
        if (grid[i].size() != data_.layers[i].expert_gpu.size()) continue;  // another model's
        if (data_.layers[i].expert_gpu != grid[i]) {
            data_.layers[i].expert_gpu = grid[i];
            changed = true;
        }
    }
    if (!changed) return;
    update();
    emit edited();
}

void ModelMapView::mousePressEvent(QMouseEvent* e) {
    const auto at = expert_at(e->position().toPoint());
    if (!editable_ || e->button() != Qt::LeftButton || at.first < 0) return;
    drag_start_ = at;
    before_drag_ = experts();
    drag_gpu_ = !data_.layers[at.first].expert_gpu[at.second];
    drag_to(e->position().toPoint());
}

void ModelMapView::mouseMoveEvent(QMouseEvent* e) {
    if (drag_start_.first >= 0 && (e->buttons() & Qt::LeftButton)) drag_to(e->position().toPoint());
}

void ModelMapView::mouseReleaseEvent(QMouseEvent* e) {
    if (drag_start_.first < 0 || e->button() != Qt::LeftButton) return;
    drag_start_ = {-1, -1};
    const ExpertGrid after = experts();
    int moved = 0;
    for (int i = 0; i < after.size(); ++i)
        for (int x = 0; x < after[i].size(); ++x) moved += after[i][x] != before_drag_[i][x];
    if (moved == 0) return;
    emit assigned(before_drag_, after,
                  (drag_gpu_ ? tr("Move %n expert(s) to the GPU", "", moved)
                             : tr("Move %n expert(s) to the CPU", "", moved)));
}

void ModelMapView::drag_to(const QPoint& pos) {
    const auto at = expert_at(pos);
    if (at.first < 0) return;
    ExpertGrid g = before_drag_;
    const int l0 = std::min(drag_start_.first, at.first),
              l1 = std::max(drag_start_.first, at.first);
    const int e0 = std::min(drag_start_.second, at.second),
              e1 = std::max(drag_start_.second, at.second);
    for (int l = l0; l <= l1; ++l)
        for (int x = e0; x <= e1 && x < g[l].size(); ++x) g[l][x] = drag_gpu_;
    set_experts(g);
}

void ModelMapView::wheelEvent(QWheelEvent* e) {
    // Ctrl+wheel zooms (the dialog keeps the cell under the pointer in place); a plain wheel
    // scrolls the scroll area.
    if (!(e->modifiers() & Qt::ControlModifier)) {
        e->ignore();
        return;
    }
    const int steps = e->angleDelta().y() > 0 ? 1 : e->angleDelta().y() < 0 ? -1 : 0;
    if (steps) emit zoomRequested(steps, e->position().toPoint());
    e->accept();
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

}  // namespace moeui
