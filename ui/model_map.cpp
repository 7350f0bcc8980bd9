#include "model_map.h"

#include <QHelpEvent>
#include <QLabel>
#include <QPainter>
#include <QScrollArea>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>

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
}

void ModelMapDialog::set_data(const ModelMapData& d) {
    view_->set_data(d);
    view_->resize(view_->sizeHint());
    caption_->setText(d.title + (d.routed ? tr(" · %1 expert choices counted").arg(d.routed)
                                          : tr(" · no tokens routed yet")));
}

}  // namespace moeui
