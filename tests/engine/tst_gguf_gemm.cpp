// Tiled GGUF GEMM (cpu/moe/gguf_gemm.h): every variant this CPU supports, for every type it
// implements, against the scalar moe::vec_dot per (row, token) on fresh random valid blocks
// and random activations; token counts {1, 3, 4, 7, 16, 33} (full and partial token tiles),
// 13 rows (not a multiple of the row tiles), a padded row stride and an output stride wider
// than the rows. The kernels keep ggml's float order, so beyond relative error <= 1e-5 they
// must be bit-identical. Also a throughput comparison with the row kernels (printed only).
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
#include "core/parallel.h"
#include "cpu/gemm.h"
#include "cpu/moe/gguf_gemm.h"
#include "cpu/moe/gguf_simd_kernels.h"
#include "cpu/quants.h"
#include "formats/ggml_types.h"
#include "random_blocks.h"

using moe::GgmlType;

namespace {

using moetest::is_k_quant;
constexpr auto& kTypes = moetest::kSimdGgufTypes;

// `tokens` activation rows quantized to vec_dot_type(t), `stride` bytes apart.
std::vector<uint8_t> random_acts(std::mt19937& rng, GgmlType t, int64_t n, int64_t tokens,
                                 size_t stride) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n));
    const GgmlType at = moe::vec_dot_type(t);
    std::vector<uint8_t> q(stride * size_t(tokens) + 64);
    for (int64_t i = 0; i < tokens; ++i) {
        for (float& v : x) v = nd(rng);
        moe::quantize_activation(at, x.data(), q.data() + size_t(i) * stride, n);
    }
    return q;
}

// gemm_xw's result `got` [T, cols] against x [T, rows] times `dense` [rows, cols] in double:
// the largest absolute error and the largest |value| of the reference.
struct ProductError {
    double worst = 0, scale = 0;
};
ProductError product_error(const std::vector<float>& x, int64_t T, const std::vector<float>& dense,
                           int64_t rows, int64_t cols, const std::vector<float>& got) {
    ProductError e;
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t c = 0; c < cols; ++c) {
            double want = 0;
            for (int64_t r = 0; r < rows; ++r)
                want += double(x[size_t(t * rows + r)]) * dense[size_t(r * cols + c)];
            e.worst = std::max(e.worst, std::abs(want - got[size_t(t * cols + c)]));
            e.scale = std::max(e.scale, std::abs(want));
        }
    }
    return e;
}

}  // namespace

class TestGgufGemm : public QObject {
    Q_OBJECT

  private slots:
    // gemm_xw on plain bf16 and f32 weights, both of its paths (row by row for few tokens,
    // column blocks of four rows at a time for more), against the double-precision product.
    void transposedProductPlainTypes() {
        std::mt19937 rng(std::random_device{}());
        std::normal_distribution<float> nd(0.0f, 1.0f);
        for (const moe::DType dt : {moe::DType::BF16, moe::DType::F32}) {
            const int64_t rows = 203, cols = 150;  // neither a multiple of 4 nor of 64
            std::vector<float> dense(static_cast<size_t>(rows * cols));
            std::vector<uint16_t> bf(dense.size());
            for (size_t i = 0; i < dense.size(); ++i) {
                bf[i] = moe::f32_to_bf16(nd(rng));
                dense[i] = dt == moe::DType::BF16 ? moe::bf16_to_f32(bf[i]) : nd(rng);
            }
            moe::WeightMatrix m;
            m.dtype = dt;
            m.rows = rows;
            m.cols = cols;
            m.data = dt == moe::DType::BF16 ? static_cast<const void*>(bf.data())
                                            : static_cast<const void*>(dense.data());
            for (const int64_t T : {int64_t(3), int64_t(70)}) {
                std::vector<float> x(static_cast<size_t>(T * rows));
                for (float& v : x) v = nd(rng);
                std::vector<float> got(static_cast<size_t>(T * cols), -1.0f);
                moe::gemm_xw(x.data(), T, m, got.data());
                const auto [worst, scale] = product_error(x, T, dense, rows, cols, got);
                // The same bits with one thread and with several (training's losses must not
                // depend on how the work was shared).
                const int threads = moe::parallel_threads();
                moe::set_parallel_threads(1);
                std::vector<float> alone(got.size());
                moe::gemm_xw(x.data(), T, m, alone.data());
                moe::set_parallel_threads(std::max(threads, 3));
                std::vector<float> many(got.size());
                moe::gemm_xw(x.data(), T, m, many.data());
                moe::set_parallel_threads(threads);
                QVERIFY(std::memcmp(alone.data(), got.data(), got.size() * 4) == 0);
                QVERIFY(std::memcmp(many.data(), got.data(), got.size() * 4) == 0);
                QVERIFY2(
                    worst <= 1e-5 * scale,
                    qPrintable(QString("%1 T=%2: max error %3 of %4")
                                   .arg(QString::fromStdString(std::string(moe::dtype_name(dt))))
                                   .arg(T)
                                   .arg(worst)
                                   .arg(scale)));
            }
        }
    }

    // gemm_xw over GGUF rows (the training backward's dx = dy W): against the product with
    // each row dequantized by the scalar moe::dequantize_row, for token counts on both sides
    // of its token chunk (128) and sparse rows of x (zeros are skipped).
    void transposedProductMatchesScalar() {
        std::mt19937 rng(std::random_device{}());
        std::normal_distribution<float> nd(0.0f, 1.0f);
        // 37 rows: one worker's share; 2000: every worker takes part (its partial sums must
        // all be added).
        for (const auto& [t, rows] : [] {
                 std::vector<std::pair<GgmlType, int64_t>> v;
                 for (const GgmlType t : kTypes) v.push_back({t, 37});
                 v.push_back({GgmlType::Q4_K, 2000});
                 return v;
             }()) {
            const int64_t cols = moetest::gguf_test_lengths(t).front();
            const size_t rb = moe::ggml_row_size(t, cols);
            const auto w = moetest::random_gguf_rows(rng, t, cols, rows, rb);
            moe::WeightMatrix m;
            m.ggml = true;
            m.ggml_type = t;
            m.rows = rows;
            m.cols = cols;
            m.data = w.data();
            std::vector<float> dense(static_cast<size_t>(rows * cols));
            for (int64_t r = 0; r < rows; ++r)
                moe::dequantize_row(t, w.data() + size_t(r) * rb, dense.data() + r * cols, cols);
            for (const int64_t T : {int64_t(1), int64_t(5), int64_t(130)}) {
                std::vector<float> x(static_cast<size_t>(T * rows));
                for (float& v : x) v = nd(rng);
                for (size_t i = 0; i < x.size(); i += 3) x[i] = 0.0f;
                std::vector<float> got(static_cast<size_t>(T * cols), -1.0f);
                moe::gemm_xw(x.data(), T, m, got.data());
                const auto [worst, scale] = product_error(x, T, dense, rows, cols, got);
                QVERIFY2(worst <= 1e-5 * scale + 1e-6,
                         qPrintable(QString("%1 T=%2: max error %3 of %4")
                                        .arg(moe::ggml_type_name(t).c_str())
                                        .arg(T)
                                        .arg(worst)
                                        .arg(scale)));
            }
        }
    }

    void matchesScalar_data();
    void matchesScalar();
    void dispatch();
    void throughput();
};

void TestGgufGemm::matchesScalar_data() {
    QTest::addColumn<QString>("variant");
    QTest::addColumn<int>("type");
    for (const auto& v : moe::gguf_gemm_variants())
        for (GgmlType t : kTypes)
            if (moe::gguf_gemm_variant(t, v.name).gemm)
                QTest::addRow("%s/%s", v.name, moe::ggml_type_name(t).c_str())
                    << QString::fromLatin1(v.name) << int(t);
}

void TestGgufGemm::matchesScalar() {
    QFETCH(QString, variant);
    QFETCH(int, type);
    const auto t = GgmlType(type);
    const std::string vname = variant.toStdString();
    bool supported = false;
    for (const auto& v : moe::gguf_gemm_variants())
        if (vname == v.name) supported = v.supported;
    if (!supported) QSKIP(qPrintable("variant " + variant + " is not supported by this CPU"));
    const moe::GgufGemm g = moe::gguf_gemm_variant(t, vname.c_str());
    QVERIFY(g.gemm != nullptr);
    QCOMPARE(QString::fromLatin1(g.variant), variant);

    std::mt19937 rng(std::random_device{}());
    double max_rel = 0.0;
    int64_t checked = 0, not_identical = 0;
    const int64_t rows = 13, ldo = rows + 3;
    for (int64_t n : moetest::gguf_test_lengths(t)) {
        for (int64_t tokens : {1, 3, 4, 7, 16, 33}) {
            for (size_t pad : {size_t(0), size_t(48)}) {
                const size_t row_bytes = moe::ggml_row_size(t, n), stride = row_bytes + pad;
                const size_t arow = moe::ggml_row_size(moe::vec_dot_type(t), n) + pad;
                const auto w = moetest::random_gguf_rows(rng, t, n, rows, stride);
                const auto a = random_acts(rng, t, n, tokens, arow);
                std::vector<float> got(size_t(tokens * ldo), NAN);
                g.gemm(w.data(), stride, rows, a.data(), arow, tokens, n, got.data(), ldo);
                for (int64_t i = 0; i < tokens; ++i) {
                    for (int64_t r = 0; r < rows; ++r) {
                        const float ref = moe::vec_dot(t, w.data() + size_t(r) * stride,
                                                       a.data() + size_t(i) * arow, n);
                        const float v = got[size_t(i * ldo + r)];
                        const double err = std::fabs(double(v) - double(ref));
                        const double rel = err / std::max(std::fabs(double(ref)), 1e-30);
                        if (!(rel <= 1e-5))
                            QFAIL(qPrintable(
                                QString("%1 n=%2 tokens=%3 token %4 row %5: got %6, scalar %7")
                                    .arg(moe::ggml_type_name(t).c_str())
                                    .arg(n)
                                    .arg(tokens)
                                    .arg(i)
                                    .arg(r)
                                    .arg(double(v), 0, 'g', 9)
                                    .arg(double(ref), 0, 'g', 9)));
                        max_rel = std::max(max_rel, rel);
                        not_identical += moetest::float_bits(v) != moetest::float_bits(ref);
                        ++checked;
                    }
                    // Padding columns of the output are left alone.
                    for (int64_t r = rows; r < ldo; ++r)
                        QVERIFY(std::isnan(got[size_t(i * ldo + r)]));
                }
            }
        }
    }
    qInfo("%s %s: %lld (row, token) results, max relative error %.3g, %lld not bit-identical",
          vname.c_str(), moe::ggml_type_name(t).c_str(), (long long)checked, max_rel,
          (long long)not_identical);
    QCOMPARE(not_identical, int64_t(0));
}

void TestGgufGemm::dispatch() {
    bool any = false;
    for (const auto& v : moe::gguf_gemm_variants()) any = any || v.supported;
    const QByteArray only = qgetenv("MOE_GGUF_SIMD");
    if (!only.isEmpty()) QSKIP("MOE_GGUF_SIMD is set: the GEMM is restricted on purpose");
    for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_K})
        QCOMPARE(moe::gguf_gemm(t).gemm != nullptr, any);
    // Types without a GEMM report none (callers keep the row kernels).
    QVERIFY(moe::gguf_gemm(GgmlType::Q2_K).gemm == nullptr);
    QVERIFY(moe::gguf_gemm_variant(GgmlType::Q4_K, "no-such-variant").gemm == nullptr);
}

void TestGgufGemm::throughput() {
    // One Qwen3-30B-A3B-sized expert projection (768 x 2048) against 32 tokens, one thread.
    constexpr int64_t kRows = 768, kCols = 2048, kTokens = 32;
    moe::register_gguf_simd_kernels();
    std::mt19937 rng(1234);
    for (GgmlType t : kTypes) {
        const moe::GgufGemm g = moe::gguf_gemm(t);
        if (!g.gemm) continue;
        const size_t row_bytes = moe::ggml_row_size(t, kCols);
        const size_t arow = moe::ggml_row_size(moe::vec_dot_type(t), kCols);
        const auto w = moetest::random_gguf_rows(rng, t, kCols, kRows, row_bytes);
        const auto a = random_acts(rng, t, kCols, kTokens, arow);
        std::vector<float> out(size_t(kRows * kTokens));
        auto time = [&](auto&& fn) {
            fn();
            double best = 1e30;
            for (int rep = 0; rep < 5; ++rep) {
                const auto t0 = std::chrono::steady_clock::now();
                fn();
                const auto t1 = std::chrono::steady_clock::now();
                best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
            }
            return best;
        };
        const moe::GgufRowDot& rd = moe::gguf_row_dot(t);
        const double tr = time([&] {
            for (int64_t i = 0; i < kTokens; ++i)
                rd.dot_rows(w.data(), row_bytes, kRows, a.data() + size_t(i) * arow, kCols,
                            out.data() + i * kRows);
        });
        const double tg = time([&] {
            g.gemm(w.data(), row_bytes, kRows, a.data(), arow, kTokens, kCols, out.data(), kRows);
        });
        const double flop = 2.0 * kRows * kCols * kTokens;
        qInfo(
            "%s %lldx%lld x %lld tokens: row kernels (%s) %.3f ms (%.1f GFLOPS), GEMM (%s) "
            "%.3f ms (%.1f GFLOPS), x%.2f",
            moe::ggml_type_name(t).c_str(), (long long)kRows, (long long)kCols, (long long)kTokens,
            rd.variant, tr * 1e3, flop / tr / 1e9, g.variant, tg * 1e3, flop / tg / 1e9, tr / tg);
    }
}

QTEST_GUILESS_MAIN(TestGgufGemm)
#include "tst_gguf_gemm.moc"
