// moestudio: the desktop app. The conversations live in the user's data folder; the built-in
// demo model (installed beside the app, or the build's) is loaded on the first start.
#include <QApplication>
#include <QDir>
#include <QFileInfo>
#include <QStandardPaths>

#include "main_window.h"

namespace {

QString find_demo_model() {
    const QString exe_dir = QCoreApplication::applicationDirPath();
    for (const QString& candidate :
         {exe_dir + "/../share/moestudio/demo-model", exe_dir + "/../../demo-model",
          QString(MOE_BUILD_DEMO_MODEL)}) {
        if (QFileInfo::exists(candidate + "/config.json")) return QDir(candidate).absolutePath();
    }
    return {};
}

}  // namespace

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setOrganizationName("MoE Studio");
    QApplication::setApplicationName("MoE Studio");
    const QString data = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
    QDir().mkpath(data);
    moeui::MainWindowOptions o;
    o.store_path = data + "/conversations.db";
    o.demo_model = find_demo_model();
    moeui::MainWindow w(o);
    w.show();
    if (argc > 1) w.openModel(QString::fromLocal8Bit(argv[1]));
    return app.exec();
}
