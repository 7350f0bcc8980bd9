#pragma once
// The model map's grid: one row per layer — its attention and dense part (GPU or CPU), then
// one cell per routed expert, coloured by where it lives and shaded by how often the router
// chose it since the model was loaded (expert telemetry) — the picture behind a placement:
// the hot experts are the ones worth GPU memory. Hovering a cell names it.
//
// Built for 61 layers x 384 experts (Kimi-K2): cells are hit-tested by arithmetic and only the
// exposed part is painted, and the cell size zooms from 3 to 32 pixels (Ctrl+wheel, or the
// dialog's buttons) inside a scroll area.
#include <QPair>
#include <QVector>
#include <QWidget>

namespace moeui {

struct LayerMapRow {
    bool attention_gpu = false, dense_gpu = false;
    QVector<bool> expert_gpu;
    QVector<quint64> expert_count;
    QVector<quint64> expert_bytes;  // each expert's weights on the GPU
};

struct ModelMapData {
    QString title;  // "qwen3_moe · 48 layers · 128 experts, top-8"
    QVector<LayerMapRow> layers;
    quint64 routed = 0;           // total (token, expert) choices counted
    QString placement_json;       // the model's placement (moe::Placement JSON), edited in the map
    quint64 fixed_gpu_bytes = 0;  // the non-expert weights the placement puts on the GPU
    quint64 gpu_budget = 0;       // the budget the model was loaded with (0: CPU only)
    quint64 total_bytes = 0;      // all weights as the GPU would hold them
};

// Which routed experts are on the GPU, [layer][expert]: the state an edit changes (and undo
// restores).
using ExpertGrid = QVector<QVector<bool>>;

class ModelMapView : public QWidget {
    Q_OBJECT

  public:
    static constexpr int kMinCell = 3, kMaxCell = 32;

    explicit ModelMapView(QWidget* parent = nullptr);
    void set_data(const ModelMapData& d);
    const ModelMapData& data() const { return data_; }
    QSize sizeHint() const override;
    // The text of the cell under `pos` ("" outside the cells).
    QString describe(const QPoint& pos) const;
    // The centre of expert `expert` of `layer` at the current zoom (tests, scrolling to it).
    QPoint expert_center(int layer, int expert) const;

    ExpertGrid experts() const;
    // Sets where the experts are (an undo/redo, a preset); emits edited() when it changed.
    void set_experts(const ExpertGrid& grid);

    int cell_size() const { return cell_; }
    // Clamped to [kMinCell, kMaxCell]; the widget resizes to its new size hint.
    void set_cell_size(int px);
    // The next cell size `steps` zoom steps away (positive: larger).
    static int zoomed(int cell, int steps);

    // Editing: a click moves an expert to the other device; dragging over a rectangle of
    // experts moves them all the way the first one went.
    void set_editable(bool on) { editable_ = on; }

  signals:
    void edited();  // the experts changed (live while dragging)
    // A finished click or drag: one undoable step.
    void assigned(const moeui::ExpertGrid& before, const moeui::ExpertGrid& after,
                  const QString& what);
    // Ctrl+wheel: `steps` zoom steps around `anchor` (in this widget's coordinates).
    void zoomRequested(int steps, const QPoint& anchor);

  protected:
    void paintEvent(QPaintEvent* e) override;
    bool event(QEvent* e) override;
    void mousePressEvent(QMouseEvent* e) override;
    void mouseMoveEvent(QMouseEvent* e) override;
    void mouseReleaseEvent(QMouseEvent* e) override;
    void wheelEvent(QWheelEvent* e) override;

  private:
    QRect cell(int layer, int column) const;  // column 0: attention, 1: dense, 2+: experts
    // The (layer, column) under `pos`, or (-1, -1) (also between cells).
    QPair<int, int> cell_at(const QPoint& pos) const;
    // The (layer, expert) under `pos`, or (-1, -1).
    QPair<int, int> expert_at(const QPoint& pos) const;
    void drag_to(const QPoint& pos);
    int widest() const;
    ModelMapData data_;
    int cell_ = 10;
    bool editable_ = false;
    QPair<int, int> drag_start_{-1, -1};
    bool drag_gpu_ = false;
    ExpertGrid before_drag_;
};

}  // namespace moeui
