#include "token_histogram.h"

#include <QPainter>
#include <algorithm>

namespace moeui {

namespace {
constexpr int kBins = 24;
}

TokenHistogram::TokenHistogram(QWidget* parent) : QWidget(parent) {
    setMinimumHeight(80);
}

void TokenHistogram::set_lengths(const std::vector<int64_t>& lengths, int64_t cutoff,
                                 bool packing) {
    cutoff_ = cutoff;
    packing_ = packing;
    longest_ = lengths.empty() ? 0 : *std::max_element(lengths.begin(), lengths.end());
    // The range covers the longest record and the cut-off, in equal bins.
    const int64_t top = std::max<int64_t>({longest_, cutoff, 1});
    width_ = std::max<int64_t>(1, (top + kBins - 1) / kBins);
    bins_.assign(size_t((top + width_ - 1) / width_ + 1), 0);
    over_ = 0;
    for (const int64_t n : lengths) {
        ++bins_[size_t(std::min<int64_t>(n / width_, int64_t(bins_.size()) - 1))];
        over_ += n > cutoff;
    }
    update();
}

void TokenHistogram::paintEvent(QPaintEvent*) {
    QPainter p(this);
    const QRect area = rect().adjusted(4, 4, -4, -18);
    p.fillRect(rect(), palette().base());
    if (bins_.empty()) return;
    const int most = std::max(1, *std::max_element(bins_.begin(), bins_.end()));
    const double bw = double(area.width()) / double(bins_.size());
    for (size_t i = 0; i < bins_.size(); ++i) {
        const int h = int(double(area.height()) * bins_[i] / most);
        const bool cut = !packing_ && int64_t(i) * width_ >= cutoff_;
        p.fillRect(QRectF(area.left() + bw * double(i) + 1, area.bottom() - h, bw - 2, h),
                   cut ? QColor(220, 110, 90) : palette().highlight().color());
    }
    // The cut-off: tokens past it are not trained on.
    const double x = area.left() + double(area.width()) * double(cutoff_) /
                                       double(width_ * int64_t(bins_.size()));
    p.setPen(QPen(QColor(200, 40, 40), 2));
    p.drawLine(QPointF(x, area.top()), QPointF(x, area.bottom()));
    p.setPen(palette().text().color());
    p.drawText(QRect(area.left(), area.bottom() + 2, area.width(), 16), Qt::AlignLeft, "0");
    p.drawText(QRect(area.left(), area.bottom() + 2, area.width(), 16), Qt::AlignRight,
               tr("%1 tokens").arg(width_ * int64_t(bins_.size())));
    p.drawText(QRect(int(x) + 4, area.top(), std::max(40, area.right() - int(x) - 4), 16),
               Qt::AlignLeft,
               packing_ ? tr("sequences of %1 (packed: longer records are split)").arg(cutoff_)
                        : tr("cut-off %1 · %2 longer, trimmed").arg(cutoff_).arg(over_));
}

}  // namespace moeui
