#include "budget_bar.h"

#include <QPainter>
#include <algorithm>

#include "format.h"

namespace moeui {

namespace {

constexpr int kRow = 18;    // one gauge
constexpr int kLabel = 40;  // room for "GPU" / "CPU"

}  // namespace

BudgetBar::BudgetBar(QWidget* parent) : QWidget(parent) {
    setObjectName("budgetBar");
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
}

void BudgetBar::set_figures(const BudgetFigures& f) {
    f_ = f;
    setToolTip(gpu_line() + "\n" + cpu_line());
    update();
}

QString BudgetBar::reason() const {
    if (fits()) return {};
    return tr("Does not fit: %1 of weights on the GPU, the budget is %2 (%3 over)")
        .arg(size_text(gpu_bytes()), size_text(f_.budget), size_text(gpu_bytes() - f_.budget));
}

QString BudgetBar::gpu_line() const {
    const QString parts =
        tr("%1 on the GPU (%2 attention/dense/head, %3 experts)")
            .arg(size_text(gpu_bytes()), size_text(f_.fixed_gpu), size_text(f_.expert_gpu));
    if (f_.budget == 0) return parts + tr(" · no GPU budget: the model was loaded on the CPU");
    return parts + tr(" of a %1 budget").arg(size_text(f_.budget));
}

QString BudgetBar::cpu_line() const {
    if (!fits()) return reason();
    return tr("%1 of the weights stay on the CPU (%2 %)")
        .arg(size_text(cpu_bytes()))
        .arg(f_.total ? 100.0 * double(cpu_bytes()) / double(f_.total) : 0.0, 0, 'f', 0);
}

QSize BudgetBar::sizeHint() const {
    return {480, 2 * kRow + 8};
}

QSize BudgetBar::minimumSizeHint() const {
    return {160, 2 * kRow + 8};
}

void BudgetBar::paintEvent(QPaintEvent*) {
    QPainter p(this);
    const QColor fixed(31, 111, 46), experts(46, 160, 67), over(218, 54, 51), cpu(110, 118, 129);
    const QColor text = palette().color(QPalette::WindowText);
    const QColor track = palette().color(QPalette::Mid);
    const int w = std::max(10, width() - kLabel - 2);
    QFont f = font();
    f.setPixelSize(11);
    p.setFont(f);

    // GPU gauge: scaled to the larger of budget and use, so an overflow shows past the mark.
    const QRect g(kLabel, 2, w, kRow - 2);
    p.setPen(text);
    p.drawText(QRect(0, g.top(), kLabel - 4, g.height()), Qt::AlignRight | Qt::AlignVCenter,
               tr("GPU"));
    p.fillRect(g, track);
    const double scale = double(std::max({f_.budget, gpu_bytes(), quint64(1)}));
    auto x_of = [&](quint64 b) { return g.left() + int(double(g.width()) * double(b) / scale); };
    const int x_fixed = x_of(f_.fixed_gpu), x_all = x_of(gpu_bytes());
    p.fillRect(QRect(QPoint(g.left(), g.top()), QPoint(x_fixed, g.bottom())), fixed);
    p.fillRect(QRect(QPoint(x_fixed, g.top()), QPoint(x_all, g.bottom())), experts);
    if (!fits()) {
        const int x_budget = x_of(f_.budget);
        p.fillRect(QRect(QPoint(x_budget, g.top()), QPoint(x_all, g.bottom())), over);
    }
    if (f_.budget > 0) {  // the budget's mark
        p.setPen(QPen(text, 2));
        const int x = x_of(f_.budget);
        p.drawLine(x, g.top() - 1, x, g.bottom() + 1);
    }
    p.setPen(Qt::white);
    p.drawText(g.adjusted(4, 0, -4, 0), Qt::AlignLeft | Qt::AlignVCenter, gpu_line());

    // CPU share, or the refusal in red.
    const QRect c(kLabel, kRow + 4, w, kRow - 2);
    p.setPen(text);
    p.drawText(QRect(0, c.top(), kLabel - 4, c.height()), Qt::AlignRight | Qt::AlignVCenter,
               tr("CPU"));
    if (fits()) {
        p.fillRect(c, track);
        const double share = f_.total ? double(cpu_bytes()) / double(f_.total) : 0.0;
        p.fillRect(QRect(c.left(), c.top(), int(double(c.width()) * share), c.height()), cpu);
        p.setPen(Qt::white);
    } else {
        p.fillRect(c, over.lighter(170));
        p.setPen(over.darker(150));
    }
    p.drawText(c.adjusted(4, 0, -4, 0), Qt::AlignLeft | Qt::AlignVCenter, cpu_line());
}

}  // namespace moeui
