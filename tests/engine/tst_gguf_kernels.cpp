// SIMD row kernels for GGUF-native expert weights (cpu/moe/gguf_simd_kernels.h): every variant
// this CPU supports against the scalar moe::vec_dot on fresh random valid blocks (sane fp16
// scales, otherwise random bytes) and random activations, for Q8_0, Q4_0, MXFP4 (n = 32, 96,
// 4096) and Q4_K, Q5_K, Q6_K (n = 256, 512, 2816). The kernels reproduce the scalar float
// operation order, so beyond the required relative error <= 1e-5 they must be bit-identical.
// Also: registration picks the best supported variant, and a single-threaded throughput
// measure (GB/s of weights for a 4096x4096 matrix; printed, not asserted).
#include <QObject>
#include <QTest>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "cpu/moe/gguf_row_dot.h"
#include "cpu/moe/gguf_simd_kernels.h"
#include "cpu/quants.h"
#include "formats/ggml_types.h"
#include "random_blocks.h"

using moe::GgmlType;

namespace {

using moetest::is_k_quant;
constexpr auto& kTypes = moetest::kSimdGgufTypes;

std::vector<uint8_t> random_activation(std::mt19937& rng, GgmlType t, int64_t n) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = nd(rng);
    const GgmlType at = moe::vec_dot_type(t);
    // Q8_K starts with an f32: vector storage from operator new is 16-byte aligned.
    std::vector<uint8_t> q(moe::ggml_row_size(at, n));
    moe::quantize_activation(at, x.data(), q.data(), n);
    return q;
}

}  // namespace

class TestGgufKernels : public QObject {
    Q_OBJECT

  private slots:
    void matchesScalar_data();
    void matchesScalar();
    void registersBestVariant();
    void throughput();
};

void TestGgufKernels::matchesScalar_data() {
    QTest::addColumn<QString>("variant");
    QTest::addColumn<int>("type");
    for (const auto& v : moe::gguf_simd_variants())
        for (GgmlType t : kTypes)
            QTest::addRow("%s/%s", v.name, moe::ggml_type_name(t).c_str())
                << QString::fromLatin1(v.name) << int(t);
}

void TestGgufKernels::matchesScalar() {
    QFETCH(QString, variant);
    QFETCH(int, type);
    const auto t = GgmlType(type);
    const std::string vname = variant.toStdString();
    bool supported = false;
    for (const auto& v : moe::gguf_simd_variants())
        if (vname == v.name) supported = v.supported;
    if (!supported) QSKIP(qPrintable("variant " + variant + " is not supported by this CPU"));
    const moe::GgufRowDot k = moe::gguf_simd_row_dot(t, vname.c_str());
    QVERIFY(k.dot_rows != nullptr);
    QCOMPARE(QString::fromLatin1(k.variant), variant);

    std::mt19937 rng(std::random_device{}());
    double max_rel = 0.0;
    int64_t checked = 0, not_identical = 0;
    for (int64_t n : moetest::gguf_test_lengths(t)) {
        // 15 rows: a group of 8, a group of 4 and the single-row tail; the second pass uses a
        // padded stride to check that row_bytes is honoured.
        for (size_t pad : {size_t(0), size_t(48)}) {
            const int64_t rows = 15;
            const size_t row_bytes = moe::ggml_row_size(t, n), stride = row_bytes + pad;
            for (int rep = 0; rep < 4; ++rep) {
                const auto w = moetest::random_gguf_rows(rng, t, n, rows, stride);
                const auto a = random_activation(rng, t, n);
                std::vector<float> got(size_t(rows), NAN);
                k.dot_rows(w.data(), stride, rows, a.data(), n, got.data());
                for (int64_t r = 0; r < rows; ++r) {
                    const float ref = moe::vec_dot(t, w.data() + size_t(r) * stride, a.data(), n);
                    const double err = std::fabs(double(got[size_t(r)]) - double(ref));
                    const double rel = err / std::max(std::fabs(double(ref)), 1e-30);
                    if (!(rel <= 1e-5))
                        QFAIL(qPrintable(QString("%1 n=%2 row %3: got %4, scalar %5 (rel %6)")
                                             .arg(moe::ggml_type_name(t).c_str())
                                             .arg(n)
                                             .arg(r)
                                             .arg(double(got[size_t(r)]), 0, 'g', 9)
                                             .arg(double(ref), 0, 'g', 9)
                                             .arg(rel)));
                    max_rel = std::max(max_rel, rel);
                    not_identical +=
                        moetest::float_bits(got[size_t(r)]) != moetest::float_bits(ref);
                    ++checked;
                }
            }
        }
    }
    qInfo("%s %s: %lld rows, max relative error %.3g, %lld not bit-identical", vname.c_str(),
          moe::ggml_type_name(t).c_str(), (long long)checked, max_rel, (long long)not_identical);
    // The kernels follow the scalar float order exactly (gguf_simd_impl.h).
    QCOMPARE(not_identical, int64_t(0));
}

void TestGgufKernels::registersBestVariant() {
    const char* best = nullptr;
    for (const auto& v : moe::gguf_simd_variants())
        if (v.supported && !best) best = v.name;
    const QByteArray only = qgetenv("MOE_GGUF_SIMD");
    if (!only.isEmpty()) QSKIP("MOE_GGUF_SIMD is set: registration is restricted on purpose");
    moe::register_gguf_simd_kernels();
    for (GgmlType t : kTypes) {
        const char* got = moe::gguf_row_dot(t).variant;
        QCOMPARE(QString::fromLatin1(got), QString::fromLatin1(best ? best : "scalar"));
    }
    // Types without SIMD kernels keep their fallback.
    QCOMPARE(QString::fromLatin1(moe::gguf_row_dot(GgmlType::Q2_K).variant),
             QStringLiteral("scalar"));
}

void TestGgufKernels::throughput() {
    constexpr int64_t kRows = 4096, kCols = 4096;
    std::mt19937 rng(1234);
    for (GgmlType t : kTypes) {
        const size_t row_bytes = moe::ggml_row_size(t, kCols);
        const auto w = moetest::random_gguf_rows(rng, t, kCols, kRows, row_bytes);
        const auto a = random_activation(rng, t, kCols);
        std::vector<float> out(static_cast<size_t>(kRows));
        const double gb = double(w.size()) / 1e9;
        auto time = [&](auto&& fn) {
            fn();  // warm-up (caches, scratch allocation)
            double best = 1e30;
            for (int rep = 0; rep < 5; ++rep) {  // best of 5: the machine may be shared
                const auto t0 = std::chrono::steady_clock::now();
                fn();
                const auto t1 = std::chrono::steady_clock::now();
                best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
            }
            return best;
        };
        const double ts = time([&] {
            for (int64_t r = 0; r < kRows; ++r)
                out[size_t(r)] = moe::vec_dot(t, w.data() + size_t(r) * row_bytes, a.data(), kCols);
        });
        QString line = QString("%1 %2x%3 (%4 MB): scalar %5 GB/s")
                           .arg(moe::ggml_type_name(t).c_str())
                           .arg(kRows)
                           .arg(kCols)
                           .arg(double(w.size()) / 1e6, 0, 'f', 1)
                           .arg(gb / ts, 0, 'f', 2);
        for (const auto& v : moe::gguf_simd_variants()) {
            if (!v.supported) {
                line += QString(", %1 n/a").arg(v.name);
                continue;
            }
            const moe::GgufRowDot k = moe::gguf_simd_row_dot(t, v.name);
            const double tv =
                time([&] { k.dot_rows(w.data(), row_bytes, kRows, a.data(), kCols, out.data()); });
            line += QString(", %1 %2 GB/s (x%3)")
                        .arg(v.name)
                        .arg(gb / tv, 0, 'f', 2)
                        .arg(ts / tv, 0, 'f', 1);
        }
        qInfo("%s", qPrintable(line));
    }
}

QTEST_GUILESS_MAIN(TestGgufKernels)
#include "tst_gguf_kernels.moc"
