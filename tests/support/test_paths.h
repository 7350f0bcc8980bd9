#pragma once
// Where the test data lives: MOE_TEST_DATA / MOE_SHARED_FIXTURES from CTest, else the paths
// compiled in (so a test binary run by hand finds its data too).
#include <QByteArray>
#include <QProcess>
#include <QString>

namespace moetest {

inline QString data_dir() {
    const QByteArray v = qgetenv("MOE_TEST_DATA");
    return v.isEmpty() ? QStringLiteral(MOE_TEST_DATA_DIR) : QString::fromLocal8Bit(v);
}

inline QString shared_fixtures_dir() {
    const QByteArray v = qgetenv("MOE_SHARED_FIXTURES");
    return v.isEmpty() ? QStringLiteral(MOE_SHARED_FIXTURES_DIR) : QString::fromLocal8Bit(v);
}

// Writes the built-in demo model to `dir` with the CLI ($MOE_CLI). Returns "" on success, else
// why not (the CLI is not built, or it failed).
inline QString make_demo_model(const QString& dir) {
    const QByteArray cli = qgetenv("MOE_CLI");
    if (cli.isEmpty()) return "MOE_CLI is not set (the CLI is not built)";
    QProcess p;
    p.start(QString::fromLocal8Bit(cli), {"make-demo", "--out", dir});
    if (!p.waitForFinished(60000) || p.exitCode() != 0)
        return "make-demo failed: " + QString::fromLocal8Bit(p.readAllStandardError());
    return {};
}

}  // namespace moetest
