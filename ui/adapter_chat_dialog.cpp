#include "adapter_chat_dialog.h"

#include <QCheckBox>
#include <QFileInfo>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QTextEdit>
#include <QVBoxLayout>

#include "engine_host.h"

namespace moeui {

AdapterChatDialog::AdapterChatDialog(EngineHost* host, const QString& model, const QString& adapter,
                                     QWidget* parent)
    : QDialog(parent), host_(host), model_(model), adapter_(adapter) {
    setWindowTitle(tr("Chat with this adapter — %1").arg(QFileInfo(model).fileName()));
    promptEdit = new QLineEdit;
    promptEdit->setPlaceholderText(tr("A prompt for both models"));
    sendButton = new QPushButton(tr("Send"));
    stopButton = new QPushButton(tr("Stop"));
    stopButton->setEnabled(false);
    greedyCheck = new QCheckBox(tr("Greedy"));
    greedyCheck->setChecked(true);  // deterministic: the two answers differ by the adapter only
    greedyCheck->setToolTip(tr("Off: the chat's sampling settings, the same seed on both sides"));
    maxTokensSpin = new QSpinBox;
    maxTokensSpin->setRange(1, 32768);
    maxTokensSpin->setValue(128);
    maxTokensSpin->setPrefix(tr("at most "));
    maxTokensSpin->setSuffix(tr(" tokens"));
    base_ = new QTextEdit;
    adapted_ = new QTextEdit;
    for (QTextEdit* t : {base_, adapted_}) t->setReadOnly(true);
    status_ = new QLabel(tr("Adapter: %1").arg(adapter));
    status_->setWordWrap(true);

    auto* row = new QHBoxLayout;
    row->addWidget(promptEdit, 1);
    row->addWidget(greedyCheck);
    row->addWidget(maxTokensSpin);
    row->addWidget(sendButton);
    row->addWidget(stopButton);
    auto* sides = new QGridLayout;
    sides->addWidget(new QLabel(tr("<b>Base model</b>")), 0, 0);
    sides->addWidget(new QLabel(tr("<b>With the adapter</b>")), 0, 1);
    sides->addWidget(base_, 1, 0);
    sides->addWidget(adapted_, 1, 1);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(row);
    layout->addLayout(sides, 1);
    layout->addWidget(status_);
    resize(900, 500);

    connect(sendButton, &QPushButton::clicked, this, [this] { ask(); });
    connect(promptEdit, &QLineEdit::returnPressed, this, [this] { ask(); });
    connect(stopButton, &QPushButton::clicked, host, &EngineHost::stop);
    connect(host, &EngineHost::adapterText, this, [this](qint64 id, int side, const QString& p) {
        if (id != request_) return;
        QTextEdit* t = side == 0 ? base_ : adapted_;
        t->moveCursor(QTextCursor::End);
        t->insertPlainText(p);
        status_->setText(side == 0 ? tr("The base model is answering...")
                                   : tr("The model with the adapter is answering..."));
    });
    connect(host, &EngineHost::adapterChatFinished, this, [this](qint64 id, const QString& error) {
        if (id != request_) return;
        request_ = 0;
        sendButton->setEnabled(true);
        stopButton->setEnabled(false);
        status_->setText(error.isEmpty() ? tr("Done. Adapter: %1").arg(adapter_) : error);
        emit answered(error);
    });
}

AdapterChatDialog::~AdapterChatDialog() {
    // The pair of models is only for this dialog: free it (after a running answer ends).
    if (host_) host_->closeAdapterChat();
}

void AdapterChatDialog::ask(const QString& prompt_in) {
    const QString prompt = prompt_in.isEmpty() ? promptEdit->text() : prompt_in;
    if (prompt.trimmed().isEmpty() || running() || !host_) return;
    promptEdit->setText(prompt);
    base_->clear();
    adapted_->clear();
    sendButton->setEnabled(false);
    stopButton->setEnabled(true);
    status_->setText(tr("Loading the base model and the adapter..."));
    request_ = host_->chatWithAdapter(model_, adapter_, prompt, maxTokensSpin->value(),
                                      greedyCheck->isChecked());
}

QString AdapterChatDialog::baseText() const {
    return base_->toPlainText();
}

QString AdapterChatDialog::adaptedText() const {
    return adapted_->toPlainText();
}

QString AdapterChatDialog::status() const {
    return status_->text();
}

}  // namespace moeui
