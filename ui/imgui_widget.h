#pragma once
// A QOpenGLWidget that hosts a Dear ImGui context (built only with libimgui-dev): Qt's mouse,
// wheel and key events are forwarded to ImGui's IO, each paint runs one ImGui frame around
// the content callback and renders it with ImGui's OpenGL3 backend. Each widget has its own
// ImGui context, so several can exist at once.
#include <QElapsedTimer>
#include <QOpenGLWidget>
#include <QString>
#include <functional>

struct ImGuiContext;

namespace moeui {

class ImGuiWidget : public QOpenGLWidget {
    Q_OBJECT

  public:
    explicit ImGuiWidget(QWidget* parent = nullptr);
    ~ImGuiWidget() override;

    // The frame's content: ImGui calls between NewFrame and Render (the context is current).
    void set_content(std::function<void()> content) { content_ = std::move(content); }
    // True once OpenGL and ImGui's renderer came up (after the first show).
    bool ready() const { return ready_; }

  signals:
    // OpenGL came up but ImGui's renderer could not (the reason, for a message instead).
    void failed(const QString& why);

  protected:
    void initializeGL() override;
    void paintGL() override;
    void mouseMoveEvent(QMouseEvent* e) override;
    void mousePressEvent(QMouseEvent* e) override;
    void mouseReleaseEvent(QMouseEvent* e) override;
    void wheelEvent(QWheelEvent* e) override;
    void keyPressEvent(QKeyEvent* e) override;
    void keyReleaseEvent(QKeyEvent* e) override;
    void leaveEvent(QEvent* e) override;

  private:
    void modifiers(Qt::KeyboardModifiers m);
    void key(QKeyEvent* e, bool down);
    void mouse_button(QMouseEvent* e, bool down);
    // ImGui settles hover and tooltips over a few frames: paint that many more after input.
    void animate(int frames = 3);

    ImGuiContext* ctx_ = nullptr;
    bool ready_ = false;
    int frames_left_ = 0;
    std::function<void()> content_;
    QElapsedTimer clock_;
};

}  // namespace moeui
