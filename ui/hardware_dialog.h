#pragma once
// The preflight / hardware page: CPU model, vector extensions (AVX2, AVX-512, AMX), cores,
// sockets and NUMA nodes, memory and its measured read bandwidth, GPUs and their memory, and
// the recommended thread count (api/hardware_report.h). The bandwidth is measured on a thread
// of its own; shown once on the first start and from Help > Hardware.
#include <QDialog>

class QTextBrowser;
class QThread;

namespace moeui {

class HardwareDialog : public QDialog {
    Q_OBJECT

  public:
    explicit HardwareDialog(QWidget* parent = nullptr);
    ~HardwareDialog() override;
    QString report_text() const;

  signals:
    void measured();

  private:
    QTextBrowser* view_ = nullptr;
    QThread* probe_ = nullptr;
};

}  // namespace moeui
