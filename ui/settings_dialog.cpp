#include "settings_dialog.h"

#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QPlainTextEdit>
#include <QSpinBox>
#include <nlohmann/json.hpp>

namespace moeui {

namespace {

QDoubleSpinBox* real_box(double lo, double hi, double step, double value, QWidget* parent) {
    auto* b = new QDoubleSpinBox(parent);
    b->setRange(lo, hi);
    b->setSingleStep(step);
    b->setDecimals(2);
    b->setValue(value);
    return b;
}

QSpinBox* int_box(int lo, int hi, int value, QWidget* parent) {
    auto* b = new QSpinBox(parent);
    b->setRange(lo, hi);
    b->setValue(value);
    return b;
}

}  // namespace

SettingsDialog::SettingsDialog(const QString& json, QWidget* parent)
    : QDialog(parent), original_(json) {
    setObjectName("settingsDialog");
    setWindowTitle(tr("Chat settings"));
    auto j = nlohmann::json::parse(json.toStdString(), nullptr, false);
    if (!j.is_object()) j = nlohmann::json::object();
    auto* form = new QFormLayout(this);
    system_ = new QPlainTextEdit(QString::fromStdString(j.value("system", std::string())), this);
    system_->setObjectName("systemPrompt");
    system_->setPlaceholderText(tr("Instructions the model sees before the conversation"));
    temperature_ = real_box(0, 2, 0.05, j.value("temperature", 0.8), this);
    temperature_->setObjectName("temperature");
    top_p_ = real_box(0.01, 1, 0.01, j.value("top_p", 0.95), this);
    top_k_ = int_box(0, 1000, j.value("top_k", 40), this);
    min_p_ = real_box(0, 0.99, 0.01, j.value("min_p", 0.05), this);
    repetition_ = real_box(0.5, 2, 0.01, j.value("repetition_penalty", 1.0), this);
    max_tokens_ = int_box(1, 1 << 20, j.value("max_tokens", 1024), this);
    max_tokens_->setObjectName("maxTokens");
    seed_ = int_box(0, 1 << 30, j.value("seed", 0), this);
    seed_->setSpecialValueText(tr("random"));
    form->addRow(tr("System prompt"), system_);
    form->addRow(tr("Temperature"), temperature_);
    form->addRow(tr("Top-p"), top_p_);
    form->addRow(tr("Top-k (0 = off)"), top_k_);
    form->addRow(tr("Min-p"), min_p_);
    form->addRow(tr("Repetition penalty"), repetition_);
    form->addRow(tr("Maximum answer tokens"), max_tokens_);
    form->addRow(tr("Seed"), seed_);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    form->addRow(buttons);
}

QString SettingsDialog::json() const {
    auto j = nlohmann::json::parse(original_.toStdString(), nullptr, false);
    if (!j.is_object()) j = nlohmann::json::object();
    j["system"] = system_->toPlainText().toStdString();
    j["temperature"] = temperature_->value();
    j["top_p"] = top_p_->value();
    j["top_k"] = top_k_->value();
    j["min_p"] = min_p_->value();
    j["repetition_penalty"] = repetition_->value();
    j["max_tokens"] = max_tokens_->value();
    j["seed"] = seed_->value();
    return QString::fromStdString(j.dump());
}

}  // namespace moeui
