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
};

struct ModelMapData {
    QString title;  // "qwen3_moe · 48 layers · 128 experts, top-8"
    QVector<LayerMapRow> layers;
    quint64 routed = 0;  // total (token, expert) choices counted
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

  protected:
    void paintEvent(QPaintEvent*) override;
    bool event(QEvent* e) override;

  private:
    QRect cell(int layer, int column) const;  // column 0: attention, 1: dense, 2+: experts
    ModelMapData data_;
    int cell_ = 10;
};

class ModelMapDialog : public QDialog {
    Q_OBJECT

  public:
    explicit ModelMapDialog(QWidget* parent = nullptr);
    ModelMapView* view() const { return view_; }

  public slots:
    void set_data(const ModelMapData& d);

  private:
    ModelMapView* view_ = nullptr;
    QLabel* caption_ = nullptr;
};

}  // namespace moeui
