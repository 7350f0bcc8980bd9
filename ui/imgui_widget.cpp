#include "imgui_widget.h"

#include <imgui.h>

#include <backends/imgui_impl_opengl3.h>
#include <QKeyEvent>
#include <QMouseEvent>
#include <QOpenGLContext>
#include <QOpenGLFunctions>
#include <QTimer>
#include <QWheelEvent>

namespace moeui {

namespace {

// Qt's key to ImGui 1.86's named keys (used as their own KeysDown indexes); -1: not one.
int imgui_key(int qt_key) {
    switch (qt_key) {
        case Qt::Key_Tab:
            return ImGuiKey_Tab;
        case Qt::Key_Left:
            return ImGuiKey_LeftArrow;
        case Qt::Key_Right:
            return ImGuiKey_RightArrow;
        case Qt::Key_Up:
            return ImGuiKey_UpArrow;
        case Qt::Key_Down:
            return ImGuiKey_DownArrow;
        case Qt::Key_PageUp:
            return ImGuiKey_PageUp;
        case Qt::Key_PageDown:
            return ImGuiKey_PageDown;
        case Qt::Key_Home:
            return ImGuiKey_Home;
        case Qt::Key_End:
            return ImGuiKey_End;
        case Qt::Key_Insert:
            return ImGuiKey_Insert;
        case Qt::Key_Delete:
            return ImGuiKey_Delete;
        case Qt::Key_Backspace:
            return ImGuiKey_Backspace;
        case Qt::Key_Space:
            return ImGuiKey_Space;
        case Qt::Key_Return:
            return ImGuiKey_Enter;
        case Qt::Key_Escape:
            return ImGuiKey_Escape;
        case Qt::Key_Enter:
            return ImGuiKey_KeyPadEnter;
        case Qt::Key_A:
            return ImGuiKey_A;
        case Qt::Key_C:
            return ImGuiKey_C;
        case Qt::Key_V:
            return ImGuiKey_V;
        case Qt::Key_X:
            return ImGuiKey_X;
        case Qt::Key_Y:
            return ImGuiKey_Y;
        case Qt::Key_Z:
            return ImGuiKey_Z;
        default:
            return -1;
    }
}

int imgui_button(Qt::MouseButton b) {
    switch (b) {
        case Qt::LeftButton:
            return 0;
        case Qt::RightButton:
            return 1;
        case Qt::MiddleButton:
            return 2;
        default:
            return -1;
    }
}

// Makes `ctx` current for the scope (each widget has its own context).
struct Current {
    explicit Current(ImGuiContext* ctx) { ImGui::SetCurrentContext(ctx); }
};

}  // namespace

ImGuiWidget::ImGuiWidget(QWidget* parent) : QOpenGLWidget(parent) {
    setMouseTracking(true);  // hover without a button held
    setFocusPolicy(Qt::StrongFocus);
    ImGuiContext* previous = ImGui::GetCurrentContext();
    ctx_ = ImGui::CreateContext();
    ImGuiIO& io = ImGui::GetIO();
    io.IniFilename = nullptr;  // no imgui.ini in the working directory
    for (int k = 0; k < ImGuiKey_COUNT; ++k) io.KeyMap[k] = k;
    ImGui::StyleColorsDark();
    ImGui::SetCurrentContext(previous);
    clock_.start();
}

ImGuiWidget::~ImGuiWidget() {
    if (ready_) {
        makeCurrent();  // the backend frees its GL objects in this widget's context
        Current c(ctx_);
        ImGui_ImplOpenGL3_Shutdown();
        doneCurrent();
    }
    ImGui::DestroyContext(ctx_);
}

void ImGuiWidget::initializeGL() {
    Current c(ctx_);
    // GLSL 1.50 runs on the 3.2+ core profile requested (profiler_window.cpp) and on the
    // compatibility profiles desktop drivers give by default.
    ready_ = ImGui_ImplOpenGL3_Init("#version 150");
    if (!ready_) emit failed(tr("Dear ImGui's OpenGL 3 renderer could not start here."));
}

void ImGuiWidget::paintGL() {
    QOpenGLFunctions* gl = context()->functions();
    gl->glClearColor(0.09f, 0.09f, 0.10f, 1.0f);
    gl->glClear(GL_COLOR_BUFFER_BIT);
    if (!ready_) return;
    Current c(ctx_);
    ImGuiIO& io = ImGui::GetIO();
    io.DisplaySize = ImVec2(float(width()), float(height()));
    const float dpr = float(devicePixelRatio());
    io.DisplayFramebufferScale = ImVec2(dpr, dpr);
    io.DeltaTime = std::max(1e-4f, float(clock_.restart()) / 1000.0f);
    ImGui_ImplOpenGL3_NewFrame();
    ImGui::NewFrame();
    if (content_) content_();
    ImGui::Render();
    ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
    if (frames_left_ > 0) {
        --frames_left_;
        QTimer::singleShot(16, this, qOverload<>(&QWidget::update));
    }
}

void ImGuiWidget::animate(int frames) {
    frames_left_ = std::max(frames_left_, frames);
    update();
}

void ImGuiWidget::modifiers(Qt::KeyboardModifiers m) {
    ImGuiIO& io = ImGui::GetIO();
    io.KeyCtrl = m & Qt::ControlModifier;
    io.KeyShift = m & Qt::ShiftModifier;
    io.KeyAlt = m & Qt::AltModifier;
    io.KeySuper = m & Qt::MetaModifier;
}

void ImGuiWidget::mouseMoveEvent(QMouseEvent* e) {
    Current c(ctx_);
    modifiers(e->modifiers());
    ImGui::GetIO().MousePos = ImVec2(float(e->position().x()), float(e->position().y()));
    animate();
}

void ImGuiWidget::mouse_button(QMouseEvent* e, bool down) {
    Current c(ctx_);
    modifiers(e->modifiers());
    ImGuiIO& io = ImGui::GetIO();
    io.MousePos = ImVec2(float(e->position().x()), float(e->position().y()));
    const int b = imgui_button(e->button());
    if (b >= 0) io.MouseDown[b] = down;
    animate();
}

void ImGuiWidget::mousePressEvent(QMouseEvent* e) {
    mouse_button(e, true);
}

void ImGuiWidget::mouseReleaseEvent(QMouseEvent* e) {
    mouse_button(e, false);
}

void ImGuiWidget::wheelEvent(QWheelEvent* e) {
    Current c(ctx_);
    modifiers(e->modifiers());
    ImGuiIO& io = ImGui::GetIO();
    io.MousePos = ImVec2(float(e->position().x()), float(e->position().y()));
    // Qt: 120 units per notch (pixel deltas from touchpads come as angle deltas too).
    io.MouseWheel += float(e->angleDelta().y()) / 120.0f;
    io.MouseWheelH += float(e->angleDelta().x()) / 120.0f;
    e->accept();
    animate();
}

void ImGuiWidget::key(QKeyEvent* e, bool down) {
    Current c(ctx_);
    modifiers(e->modifiers());
    ImGuiIO& io = ImGui::GetIO();
    const int k = imgui_key(e->key());
    if (k >= 0) io.KeysDown[k] = down;
    if (down) {
        for (const QChar ch : e->text())
            if (ch.isPrint()) io.AddInputCharacter(ch.unicode());
    }
    animate();
}

void ImGuiWidget::keyPressEvent(QKeyEvent* e) {
    key(e, true);
}

void ImGuiWidget::keyReleaseEvent(QKeyEvent* e) {
    key(e, false);
}

void ImGuiWidget::leaveEvent(QEvent* e) {
    Current c(ctx_);
    ImGui::GetIO().MousePos = ImVec2(-FLT_MAX, -FLT_MAX);  // no hover left behind
    animate();
    QOpenGLWidget::leaveEvent(e);
}

}  // namespace moeui
