#pragma once
// The placement editor's budget bar: the GPU weights of the placement being edited against the
// GPU budget (the fixed part — attention, dense, head — and the routed experts drawn apart, so
// a user sees what the experts cost), and under it the share of the weights left to the CPU.
// Over the budget the bar turns red and says by how much: that placement is refused (reason()).
//
// Only the GPU side can refuse an edit: the host keeps the model's weights memory-mapped
// whatever the split, so moving experts never needs more RAM; the CPU line is there to show
// how much of each token's expert work stays on the CPU.
#include <QWidget>

namespace moeui {

struct BudgetFigures {
    quint64 fixed_gpu = 0;   // non-expert weights on the GPU
    quint64 expert_gpu = 0;  // routed experts on the GPU
    quint64 budget = 0;      // GPU weight budget; 0: none set (a CPU-only load), nothing refused
    quint64 total = 0;       // all weights, as the GPU would hold them (bf16)
};

class BudgetBar : public QWidget {
    Q_OBJECT

  public:
    explicit BudgetBar(QWidget* parent = nullptr);
    void set_figures(const BudgetFigures& f);
    const BudgetFigures& figures() const { return f_; }
    quint64 gpu_bytes() const { return f_.fixed_gpu + f_.expert_gpu; }
    quint64 cpu_bytes() const { return f_.total > gpu_bytes() ? f_.total - gpu_bytes() : 0; }
    bool fits() const { return f_.budget == 0 || gpu_bytes() <= f_.budget; }
    // Why the placement does not fit ("" when it does).
    QString reason() const;
    // The two lines the bar writes: the GPU figures, then the CPU's share or the reason.
    QString gpu_line() const;
    QString cpu_line() const;
    QSize sizeHint() const override;
    QSize minimumSizeHint() const override;

  protected:
    void paintEvent(QPaintEvent*) override;

  private:
    BudgetFigures f_;
};

}  // namespace moeui
