#include "chat_view.h"

#include <QScrollBar>
#include <QUrl>

namespace moeui {

namespace {

QString block(const QString& role, const QString& text, const QString& footer,
              const QString& branches) {
    const bool user = role == "user";
    const QString who = user                  ? QObject::tr("You")
                        : role == "assistant" ? QObject::tr("Model")
                                              : QObject::tr("System");
    return QString(
               "<div style='margin: 8px 4px;'><b>%1</b> %2"
               "<div style='white-space: pre-wrap;'>%3</div>%4</div>")
        .arg(who.toHtmlEscaped(), branches, text.toHtmlEscaped(),
             footer.isEmpty() ? QString()
                              : "<div style='color: gray; font-size: small;'>" +
                                    footer.toHtmlEscaped() + "</div>");
}

}  // namespace

ChatView::ChatView(QWidget* parent) : QTextBrowser(parent) {
    setObjectName("chatView");
    setOpenLinks(false);
    setOpenExternalLinks(false);
    connect(this, &QTextBrowser::anchorClicked, this, [this](const QUrl& url) {
        // branch:<message id>:<-1|1>
        const QStringList parts = url.toString().split(':');
        if (parts.size() == 3 && parts[0] == "branch")
            emit branchRequested(parts[1].toLongLong(), parts[2].toInt());
    });
}

void ChatView::set_messages(const QList<MessageRow>& messages) {
    messages_ = messages;
    streaming_ = false;
    streamed_.clear();
    render();
}

void ChatView::begin_answer() {
    streaming_ = true;
    streamed_.clear();
    render();
}

void ChatView::append_piece(const QString& piece) {
    if (!streaming_) return;
    streamed_ += piece;
    render();
}

qint64 ChatView::last_answer() const {
    for (auto it = messages_.rbegin(); it != messages_.rend(); ++it)
        if (it->role == "assistant") return it->id;
    return 0;
}

qint64 ChatView::last_question() const {
    for (auto it = messages_.rbegin(); it != messages_.rend(); ++it)
        if (it->role == "user") return it->id;
    return 0;
}

void ChatView::render() {
    QString html;
    for (const MessageRow& m : messages_) {
        QString branches;
        if (m.sibling_count > 1) {
            branches = QString("<a href='branch:%1:-1'>‹</a> %2/%3 <a href='branch:%1:1'>›</a>")
                           .arg(m.id)
                           .arg(m.sibling_index + 1)
                           .arg(m.sibling_count);
        }
        html += block(m.role, m.content, m.stats, branches);
    }
    if (streaming_) html += block("assistant", streamed_ + QString::fromUtf8("▍"), {}, {});
    const bool at_end = verticalScrollBar()->value() >= verticalScrollBar()->maximum() - 4;
    setHtml(html);
    if (at_end) verticalScrollBar()->setValue(verticalScrollBar()->maximum());
}

}  // namespace moeui
