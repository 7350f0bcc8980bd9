#pragma once
// Where the test data lives: MOE_TEST_DATA / MOE_SHARED_FIXTURES from CTest, else the paths
// compiled in (so a test binary run by hand finds its data too).
#include <QByteArray>
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

}  // namespace moetest
