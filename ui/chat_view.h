#pragma once
// The transcript of the conversation's active branch, rendered from Markdown: one block per
// message, the answer being generated growing as its text streams in, "‹ 2/3 ›" on messages
// that have sibling branches (clicking switches), thinking sections folded to one line
// (clicking shows them), a "copy" link under each code block, and under each answer its token
// count and speed.
#include <QList>
#include <QSet>
#include <QTextBrowser>

#include "engine_host.h"

namespace moeui {

class ChatView : public QTextBrowser {
    Q_OBJECT

  public:
    explicit ChatView(QWidget* parent = nullptr);

    void set_messages(const QList<MessageRow>& messages);
    void begin_answer();
    void append_piece(const QString& piece);
    const QList<MessageRow>& messages() const { return messages_; }
    // The newest answer / question on screen (0 when none).
    qint64 last_answer() const;
    qint64 last_question() const;
    // The text on screen, for tests and copy.
    QString transcript() const { return toPlainText(); }

  signals:
    void branchRequested(qint64 message, int delta);

  private:
    void render();
    QList<MessageRow> messages_;
    bool streaming_ = false;
    QString streamed_;
    QSet<qint64> expanded_;    // answers whose thinking section is shown
    QStringList code_blocks_;  // the fenced code blocks on screen, for their copy links
};

}  // namespace moeui
