#include "hardware_dialog.h"

#include <QDialogButtonBox>
#include <QTextBrowser>
#include <QThread>
#include <QVBoxLayout>
#include <memory>

#include "api/hardware_report.h"
#include "format.h"

namespace moeui {

namespace {

QString to_markdown(const nlohmann::json& j) {
    const auto& c = j["cpu"];
    const auto& m = j["memory"];
    QStringList isa;
    for (const auto& f : c["isa"]) isa << QString::fromStdString(f.get<std::string>());
    QString md = "### " + QObject::tr("Processor") + "\n\n";
    md += "- " + QString::fromStdString(c["model"].get<std::string>()) + "\n";
    md += "- " +
          QObject::tr("%1 cores (%2 threads), %3 socket(s); %4")
              .arg(c["physical_cores"].get<int>())
              .arg(c["logical_cores"].get<int>())
              .arg(c["packages"].get<int>())
              .arg(QString::fromStdString(c["numa"].get<std::string>())) +
          "\n";
    md += "- " + QObject::tr("Vector extensions: %1").arg(isa.join(", ")) + "\n";
    md += "- " +
          QObject::tr("Expert kernels: %1; recommended threads: %2")
              .arg(QString::fromStdString(c["expert_kernels"].get<std::string>()))
              .arg(c["default_threads"].get<int>()) +
          "\n\n### " + QObject::tr("Memory") + "\n\n";
    md +=
        "- " +
        QObject::tr("%1 total, %2 available")
            .arg(gib(m["total_bytes"].get<uint64_t>()), gib(m["available_bytes"].get<uint64_t>())) +
        "\n";
    md += "- " +
          (m.contains("dram_read_gb_per_s")
               ? QObject::tr("Measured read bandwidth: %1 GB/s (%2 threads) — the bound on decode "
                             "speed for experts on the CPU")
                     .arg(m["dram_read_gb_per_s"].get<double>(), 0, 'f', 1)
                     .arg(m["dram_read_threads"].get<int>())
               : QObject::tr("Measuring the read bandwidth...")) +
          "\n\n### " + QObject::tr("Graphics") + "\n\n";
    if (j["gpus"].empty()) {
        md += "- " +
              QObject::tr("No GPU: %1")
                  .arg(QString::fromStdString(j.value("gpu_unavailable", std::string()))) +
              "\n";
    }
    for (const auto& g : j["gpus"])
        md +=
            "- " +
            QObject::tr("%1 (compute %2, %3 SMs): %4, %5 free")
                .arg(QString::fromStdString(g["name"].get<std::string>()),
                     QString::fromStdString(g["compute_capability"].get<std::string>()))
                .arg(g["multiprocessors"].get<int>())
                .arg(gib(g["total_bytes"].get<uint64_t>()), gib(g["free_bytes"].get<uint64_t>())) +
            "\n";
    return md;
}

}  // namespace

HardwareDialog::HardwareDialog(QWidget* parent) : QDialog(parent) {
    setObjectName("hardwareDialog");
    setWindowTitle(tr("This machine"));
    resize(640, 420);
    auto* v = new QVBoxLayout(this);
    view_ = new QTextBrowser(this);
    view_->setMarkdown(to_markdown(moe::hardware_report(false)));
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Close, this);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::close);
    v->addWidget(view_);
    v->addWidget(buttons);
    auto report = std::make_shared<nlohmann::json>();
    probe_ = QThread::create([report] { *report = moe::hardware_report(true); });
    connect(probe_, &QThread::finished, this, [this, report] {
        view_->setMarkdown(to_markdown(*report));
        emit measured();
    });
    probe_->start();
}

HardwareDialog::~HardwareDialog() {
    probe_->wait();
    delete probe_;
}

QString HardwareDialog::report_text() const {
    return view_->toPlainText();
}

}  // namespace moeui
