// The float-weight row kernels (cpu/float_rows.h) against a double-precision reference on
// fresh random inputs: F32/F16/BF16 weights, fp32 activations, odd row counts, token counts
// and lengths (the SIMD tails), one token (float_rows_dot) and many (float_rows_gemm); and the
// GGUF float-type row dots against the scalar vec_dot they replace.
#include <QtTest>
#include <cmath>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "cpu/float_rows.h"
#include "cpu/moe/gguf_row_dot.h"
#include "cpu/moe/gguf_simd_kernels.h"
#include "cpu/quants.h"

namespace {

using namespace moe;

// Weights of type t from floats (returns the bytes and the values they hold).
std::vector<uint8_t> encode(DType t, std::vector<float>& v) {
    std::vector<uint8_t> b(v.size() * dtype_size(t));
    for (size_t i = 0; i < v.size(); ++i) {
        if (t == DType::F32) {
            std::memcpy(b.data() + 4 * i, &v[i], 4);
            continue;
        }
        const uint16_t h = t == DType::F16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
        std::memcpy(b.data() + 2 * i, &h, 2);
        v[i] = t == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
    return b;
}

double rel(double got, double want, double scale) {
    return std::fabs(got - want) / std::max(scale, 1e-30);
}

}  // namespace

class TestFloatRows : public QObject {
    Q_OBJECT

  private slots:
    void gemmAndDotAgainstReference() {
        const uint32_t seed = std::random_device{}();
        std::mt19937 rng(seed);
        std::normal_distribution<float> nd;
        double worst = 0;
        for (DType t : {DType::F32, DType::F16, DType::BF16}) {
            for (int64_t rows : {1, 3, 4, 7, 33}) {
                for (int64_t n : {1, 15, 16, 17, 100, 1000}) {
                    for (int64_t T : {1, 2, 3, 4, 5, 9}) {
                        std::vector<float> w(static_cast<size_t>(rows * n)),
                            x(static_cast<size_t>(T * n));
                        for (float& v : w) v = nd(rng);
                        for (float& v : x) v = nd(rng);
                        const auto wb = encode(t, w);  // w now holds the stored values
                        const size_t rb = size_t(n) * dtype_size(t);
                        std::vector<float> y(static_cast<size_t>(T * rows)),
                            d(static_cast<size_t>(rows));
                        float_rows_gemm(t, wb.data(), rb, rows, x.data(), n, T, n, y.data(), rows);
                        for (int64_t tt = 0; tt < T; ++tt) {
                            float_rows_dot(t, wb.data(), rb, rows, x.data() + tt * n, n, d.data());
                            for (int64_t r = 0; r < rows; ++r) {
                                double ref = 0, mag = 0;
                                for (int64_t k = 0; k < n; ++k) {
                                    const double p =
                                        double(w[size_t(r * n + k)]) * x[size_t(tt * n + k)];
                                    ref += p;
                                    mag += std::fabs(p);
                                }
                                const double e1 = rel(y[size_t(tt * rows + r)], ref, mag);
                                const double e2 = rel(d[size_t(r)], ref, mag);
                                worst = std::max({worst, e1, e2});
                                QVERIFY2(e1 < 1e-5 && e2 < 1e-5,
                                         qPrintable(QString("%1 rows=%2 n=%3 T=%4 seed=%5")
                                                        .arg(dtype_name(t).data())
                                                        .arg(rows)
                                                        .arg(n)
                                                        .arg(T)
                                                        .arg(seed)));
                            }
                        }
                    }
                }
            }
        }
        qInfo("worst |error| / sum|products|: %.2e", worst);
    }

    void ggufFloatRowDotsMatchScalar() {
        register_gguf_simd_kernels();
        std::mt19937 rng(std::random_device{}());
        std::normal_distribution<float> nd;
        for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16}) {
            const int64_t rows = 11, n = 77;
            std::vector<float> w(static_cast<size_t>(rows * n)), x(static_cast<size_t>(n));
            for (float& v : w) v = nd(rng);
            for (float& v : x) v = nd(rng);
            const size_t rb = ggml_row_size(t, n);
            std::vector<uint8_t> wb(rb * size_t(rows)), xb(ggml_row_size(t, n));
            for (int64_t r = 0; r < rows; ++r)
                quantize_row(t, w.data() + r * n, wb.data() + size_t(r) * rb, n);
            quantize_activation(t, x.data(), xb.data(), n);
            std::vector<float> got(static_cast<size_t>(rows)), want(static_cast<size_t>(rows));
            gguf_row_dot(t).dot_rows(wb.data(), rb, rows, xb.data(), n, got.data());
            gguf_row_dot_scalar(t).dot_rows(wb.data(), rb, rows, xb.data(), n, want.data());
            for (int64_t r = 0; r < rows; ++r)
                QVERIFY(std::fabs(got[size_t(r)] - want[size_t(r)]) <=
                        1e-5 * std::max(1.0f, std::fabs(want[size_t(r)])));
        }
    }
};

QTEST_APPLESS_MAIN(TestFloatRows)
#include "tst_float_rows.moc"
