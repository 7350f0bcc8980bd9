#include "chat_view.h"

#include <QClipboard>
#include <QGuiApplication>
#include <QScrollBar>
#include <QUrl>

namespace moeui {

namespace {

// A model's "<think>...</think>" reasoning: collapsed to one line unless expanded. Returns the
// Markdown of `text` with the section replaced.
QString fold_thinking(const QString& text, qint64 id, bool expanded, bool streaming) {
    const int open = text.indexOf("<think>");
    if (open < 0) return text;
    const int close = text.indexOf("</think>", open);
    const QString thoughts = text.mid(open + 7, close < 0 ? -1 : close - open - 7).trimmed();
    const QString rest = close < 0 ? QString() : text.mid(close + 8);
    QString md;
    if (close < 0 && streaming) {
        md = QObject::tr("> *Thinking…*\n\n");
    } else if (expanded) {
        QString quoted = thoughts;
        quoted.replace("\n", "\n> ");
        md = QString("> *%1* [%2](think:%3)\n>\n> %4\n\n")
                 .arg(QObject::tr("Thoughts"), QObject::tr("hide"))
                 .arg(id)
                 .arg(quoted);
    } else {
        md = QString("> *%1* [%2](think:%3)\n\n")
                 .arg(QObject::tr("Thought for %1 words")
                          .arg(thoughts.split(' ', Qt::SkipEmptyParts).size()),
                      QObject::tr("show"))
                 .arg(id);
    }
    return text.left(open) + md + rest.trimmed();
}

}  // namespace

ChatView::ChatView(QWidget* parent) : QTextBrowser(parent) {
    setObjectName("chatView");
    setOpenLinks(false);
    setOpenExternalLinks(false);
    connect(this, &QTextBrowser::anchorClicked, this, [this](const QUrl& url) {
        // branch:<message id>:<-1|1>, think:<message id>
        const QStringList parts = url.toString().split(':');
        if (parts.size() == 3 && parts[0] == "branch")
            emit branchRequested(parts[1].toLongLong(), parts[2].toInt());
        if (parts.size() == 2 && parts[0] == "copy") {
            const int i = parts[1].toInt();
            if (i >= 0 && i < code_blocks_.size())
                QGuiApplication::clipboard()->setText(code_blocks_[i]);
        }
        if (parts.size() == 2 && parts[0] == "think") {
            const qint64 id = parts[1].toLongLong();
            if (!expanded_.remove(id)) expanded_.insert(id);
            render();
        }
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
    // The transcript as Markdown (code blocks, lists, emphasis as the model wrote them).
    QString md;
    code_blocks_.clear();
    // A "copy" link under every fenced code block (the block's text kept for the click).
    const auto with_copy_links = [&](const QString& text) {
        QString out;
        const QStringList lines = text.split('\n');
        QString fence, code;
        for (const QString& line : lines) {
            out += line + "\n";
            const QString t = line.trimmed();
            if (fence.isEmpty() && t.startsWith("```")) {
                fence = "```";
                code.clear();
            } else if (!fence.isEmpty() && t == fence) {
                fence.clear();
                code_blocks_.push_back(code);
                out += QString("[%1](copy:%2)\n").arg(tr("copy")).arg(code_blocks_.size() - 1);
            } else if (!fence.isEmpty()) {
                code += (code.isEmpty() ? "" : "\n") + line;
            }
        }
        return out;
    };
    const auto add = [&](qint64 id, const QString& role, const QString& text, const QString& stats,
                         const QString& branches, bool streaming) {
        const QString who = role == "user"        ? tr("You")
                            : role == "assistant" ? tr("Model")
                                                  : tr("System");
        md += "**" + who + "**" + (branches.isEmpty() ? "" : "  " + branches) + "\n\n";
        md += with_copy_links(role == "assistant"
                                  ? fold_thinking(text, id, expanded_.contains(id), streaming)
                                  : text) +
              "\n\n";
        if (!stats.isEmpty()) md += "*" + stats + "*\n\n";
        md += "---\n\n";
    };
    for (const MessageRow& m : messages_) {
        QString branches;
        if (m.sibling_count > 1) {
            branches = QString("[‹](branch:%1:-1) %2/%3 [›](branch:%1:1)")
                           .arg(m.id)
                           .arg(m.sibling_index + 1)
                           .arg(m.sibling_count);
        }
        add(m.id, m.role, m.content, m.stats, branches, false);
    }
    if (streaming_) add(-1, "assistant", streamed_ + QString::fromUtf8("▍"), {}, {}, true);
    const bool at_end = verticalScrollBar()->value() >= verticalScrollBar()->maximum() - 4;
    setMarkdown(md);
    if (at_end) verticalScrollBar()->setValue(verticalScrollBar()->maximum());
}

}  // namespace moeui
