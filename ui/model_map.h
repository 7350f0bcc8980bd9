#pragma once
// The model map: how the loaded model is split across CPU and GPU and how its experts are
// used. One row per layer: its attention and dense part (GPU or CPU), then one cell per routed
// expert, coloured by where it lives and shaded by how often the router chose it since the
// model was loaded (expert telemetry) — the picture behind a placement: the hot experts are
// the ones worth GPU memory. Hovering a cell names the expert and its count.
#include <QDialog>
#include <QVector>
#include <QWidget>

class QLabel;

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
};

class ModelMapView : public QWidget {
    Q_OBJECT

  public:
    explicit ModelMapView(QWidget* parent = nullptr);
    void set_data(const ModelMapData& d);
    const ModelMapData& data() const { return data_; }
    QSize sizeHint() const override;
    // The text of the cell under `pos` ("" outside the cells).
    QString describe(const QPoint& pos) const;

    // Editing: a click moves an expert to the other device; dragging over a rectangle of
    // experts moves them all the way the first one went.
    void set_editable(bool on) { editable_ = on; }

  signals:
    void edited();

  protected:
    void paintEvent(QPaintEvent*) override;
    bool event(QEvent* e) override;
    void mousePressEvent(QMouseEvent* e) override;
    void mouseMoveEvent(QMouseEvent* e) override;

  private:
    QRect cell(int layer, int column) const;  // column 0: attention, 1: dense, 2+: experts
    // The (layer, expert) under `pos`, or (-1, -1).
    QPair<int, int> expert_at(const QPoint& pos) const;
    void drag_to(const QPoint& pos);
    ModelMapData data_;
    int cell_ = 10;
    bool editable_ = false;
    QPair<int, int> drag_start_{-1, -1};
    bool drag_gpu_ = false;
    QVector<LayerMapRow> before_drag_;
};

class ModelMapDialog : public QDialog {
    Q_OBJECT

  public:
    explicit ModelMapDialog(QWidget* parent = nullptr);
    ModelMapView* view() const { return view_; }

    // The model's placement with the experts as edited in the map (JSON; "" when none).
    QString edited_placement() const;
    // The weights the edited placement puts on the GPU.
    quint64 gpu_bytes() const;
    // Writes edited_placement() to `path` (a placement file for --placement, or to apply later).
    bool save_placement(const QString& path);
    QLabel* status() const { return status_; }

  public slots:
    void set_data(const ModelMapData& d);
    // The engine's answer to an Apply ("" = applied).
    void applied(const QString& error);

  signals:
    void applyRequested(const QString& placement_json);

  private:
    void update_caption();
    ModelMapView* view_ = nullptr;
    QLabel* caption_ = nullptr;
    QLabel* status_ = nullptr;
    bool edited_ = false;
};

}  // namespace moeui
