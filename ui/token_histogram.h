#pragma once
// The fine-tune wizard's histogram of record lengths in tokens against the cut-off: how much of
// a dataset the cut-off trims, before a run starts.
#include <QWidget>
#include <vector>

namespace moeui {

class TokenHistogram : public QWidget {
    Q_OBJECT

  public:
    explicit TokenHistogram(QWidget* parent = nullptr);
    // Lengths of the records before any cut; `cutoff` the tokens a sequence keeps.
    // With `packing`, long records are split into sequences rather than trimmed.
    void set_lengths(const std::vector<int64_t>& lengths, int64_t cutoff, bool packing = false);
    const std::vector<int>& bins() const { return bins_; }
    int64_t bin_width() const { return width_; }
    int over_cutoff() const { return over_; }  // records longer than the cut-off
    int64_t longest() const { return longest_; }

  protected:
    void paintEvent(QPaintEvent* e) override;
    QSize sizeHint() const override { return {400, 90}; }

  private:
    std::vector<int> bins_;
    int64_t width_ = 1, cutoff_ = 0, longest_ = 0;
    int over_ = 0;
    bool packing_ = false;
};

}  // namespace moeui
