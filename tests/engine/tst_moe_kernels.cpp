// Packed expert kernels (cpu/moe/moe_kernels.h): every variant this CPU supports against the
// scalar kernel and against fp32 references (dequantized packed weights, and the original fp32
// weights) on fresh random inputs, odd shapes (rows/cols not multiples of 16/64) and T = 1, 3,
// 17, 64; plus the GGUF row-dot registry and the MOE_CPU_KERNELS override. Unsupported variants
// are skipped with a message. The measured errors are printed (qInfo) for the record.
#include <QObject>
#include <QTest>

#include <cstdlib>

#include "core/error.h"
#include "cpu/moe/gguf_row_dot.h"
#include "tst_moe_kernels_common.h"

using namespace moe_test;

class TestMoeKernels : public QObject {
    Q_OBJECT

  private:
    void run_variant(KernelVariant v) {
        if (!kernel_variant_supported(v))
            QSKIP(qPrintable(
                QString("%1 kernels not supported on this CPU").arg(kernel_variant_name(v))));
        const struct {
            const char* name;
            PackOptions opt;
        } fmts[] = {{"bf16", {PackedFormat::BF16, 32, false, false}},
                    {"bf16/f32-acts", {PackedFormat::BF16, 32, false, false, true}},
                    {"int8", {PackedFormat::INT8, 32, false, false}},
                    {"int8/fp16-scales", {PackedFormat::INT8, 32, false, true}},
                    {"int4/g32", {PackedFormat::INT4, 32, false, false}},
                    {"int4/g64/min", {PackedFormat::INT4, 64, true, false}},
                    {"int4/g128/fp16", {PackedFormat::INT4, 128, false, true}}};
        const int64_t shapes[][2] = {{16, 64}, {37, 100}, {130, 300}, {48, 1000}};
        std::random_device rd;
        for (const auto& f : fmts) {
            double worst[3] = {0, 0, 0};
            for (const auto& s : shapes) {
                for (int64_t T : {1, 3, 17, 64}) {
                    for (bool gu : {false, true}) {
                        const uint32_t seed = rd();
                        const KernelErrors e = check_kernel(v, f.opt, s[0], s[1], T, gu, seed);
                        const QString where = QString("%1 %2 %3x%4 T=%5 gate_up=%6 seed=%7")
                                                  .arg(kernel_variant_name(v), f.name)
                                                  .arg(s[0])
                                                  .arg(s[1])
                                                  .arg(T)
                                                  .arg(gu)
                                                  .arg(seed);
                        QVERIFY2(e.vs_scalar < scalar_bar(v, f.opt.format), qPrintable(where));
                        QVERIFY2(e.vs_dequant < format_bar(f.opt.format), qPrintable(where));
                        // Against the unquantized source the error is the format's own
                        // quantization noise: a statistic, meaningful over enough outputs (a
                        // 16-output case of int4 exceeds 0.2 by chance, e.g. seed 1171549306).
                        if (s[0] * T * (gu ? 2 : 1) >= 128)
                            QVERIFY2(e.vs_source < format_bar(f.opt.format), qPrintable(where));
                        // fp32 activations: exact products, only the summation order differs.
                        if (f.opt.f32_acts) QVERIFY2(e.vs_dequant < 1e-5, qPrintable(where));
                        worst[0] = std::max(worst[0], e.vs_scalar);
                        worst[1] = std::max(worst[1], e.vs_dequant);
                        worst[2] = std::max(worst[2], e.vs_source);
                    }
                }
            }
            qInfo(
                "%-7s %-17s worst rel err: vs scalar %.2e, vs dequantized fp32 %.2e, vs source "
                "fp32 %.2e (bar %.2f)",
                kernel_variant_name(v), f.name, worst[0], worst[1], worst[2],
                format_bar(f.opt.format));
        }
    }

    // Q4K (GGUF Q4_K repacked): shapes whose K is a multiple of 256.
    void run_q4k(KernelVariant v) {
        if (!kernel_variant_supported(v)) QSKIP("not supported on this CPU");
        const PackOptions opt{PackedFormat::Q4K, 32, false, false};
        const int64_t shapes[][2] = {{16, 256}, {37, 512}, {130, 768}};
        std::random_device rd;
        double worst[3] = {0, 0, 0};
        for (const auto& s : shapes) {
            for (int64_t T : {1, 3, 17, 64}) {
                for (bool gu : {false, true}) {
                    const uint32_t seed = rd();
                    const KernelErrors e = check_kernel(v, opt, s[0], s[1], T, gu, seed);
                    const QString where = QString("%1 q4k %2x%3 T=%4 gate_up=%5 seed=%6")
                                              .arg(kernel_variant_name(v))
                                              .arg(s[0])
                                              .arg(s[1])
                                              .arg(T)
                                              .arg(gu)
                                              .arg(seed);
                    QVERIFY2(e.vs_scalar < 1e-5, qPrintable(where));
                    QVERIFY2(e.vs_dequant < format_bar(PackedFormat::Q4K), qPrintable(where));
                    QVERIFY2(e.vs_source < format_bar(PackedFormat::Q4K), qPrintable(where));
                    worst[0] = std::max(worst[0], e.vs_scalar);
                    worst[1] = std::max(worst[1], e.vs_dequant);
                    worst[2] = std::max(worst[2], e.vs_source);
                }
            }
        }
        qInfo("%-7s q4k worst rel err: vs scalar %.2e, vs Q4_K weights x fp32 activations %.2e",
              kernel_variant_name(v), worst[0], worst[1]);
    }

  private slots:
    void q4kScalar() { run_q4k(KernelVariant::Scalar); }
    void q4kAvx2() { run_q4k(KernelVariant::Avx2); }
    void q4kAvx512() { run_q4k(KernelVariant::Avx512); }
    void q4kAmx() { run_q4k(KernelVariant::Amx); }

    // The repack is lossless: every weight reads back exactly as ggml dequantizes it, and the
    // kernel equals the dot of those weights with the int8 activations it was given.
    void q4kRepackIsLossless() {
        std::mt19937 rng(std::random_device{}());
        const int64_t rows = 21, cols = 512;
        const std::vector<float> w = random_vec(rng, size_t(rows * cols), 0.05f);
        const size_t rb = ggml_row_size(GgmlType::Q4_K, cols);
        std::vector<uint8_t> q(rb * size_t(rows));
        for (int64_t r = 0; r < rows; ++r)
            quantize_row(GgmlType::Q4_K, w.data() + r * cols, q.data() + size_t(r) * rb, cols);
        WeightMatrix src;
        src.ggml = true;
        src.ggml_type = GgmlType::Q4_K;
        src.rows = rows;
        src.cols = cols;
        src.data = q.data();
        const PackedMatrix m = pack_matrix(src, PackOptions{PackedFormat::Q4K, 32, false, false});
        std::vector<float> want(static_cast<size_t>(cols)), got(static_cast<size_t>(cols));
        for (int64_t r = 0; r < rows; ++r) {
            dequantize_row(GgmlType::Q4_K, q.data() + size_t(r) * rb, want.data(), cols);
            m.dequantize_row(r, got.data());
            QVERIFY2(want == got, qPrintable(QString("row %1").arg(r)));
        }
        const std::vector<float> x = random_vec(rng, size_t(cols));
        PackedActs a;
        prepare_acts(m, x.data(), 1, cols, a);
        std::vector<float> y(size_t(m.blocks * kRowBlock));
        packed_matmul(default_kernel_variant(), m, a, 0, m.blocks, y.data(), 0);
        for (int64_t r = 0; r < rows; ++r) {
            m.dequantize_row(r, got.data());
            double ref = 0;
            for (int64_t k = 0; k < cols; ++k)
                ref += double(got[size_t(k)]) * a.i8[size_t(k)] * a.scale[size_t(k / 256)];
            QVERIFY2(std::fabs(y[size_t(r)] - ref) <= 1e-5 * std::max(1.0, std::fabs(ref)),
                     qPrintable(QString("row %1: %2 vs %3").arg(r).arg(y[size_t(r)]).arg(ref)));
        }
    }

    void scalar() { run_variant(KernelVariant::Scalar); }
    void avx2() { run_variant(KernelVariant::Avx2); }
    void avx512() { run_variant(KernelVariant::Avx512); }
    void amx() { run_variant(KernelVariant::Amx); }

    void defaultVariantIsSupported() {
        QVERIFY(kernel_variant_supported(default_kernel_variant()));
        qInfo("supported: %s", [] {
            static std::string s;
            for (auto v : supported_kernel_variants())
                s += std::string(kernel_variant_name(v)) + " ";
            return s.c_str();
        }());
    }

    void rejectsBadGroup() {
        std::vector<float> w(16 * 64, 1.0f);
        PackOptions opt{PackedFormat::INT4, 48, false, false};
        QVERIFY_THROWS_EXCEPTION(moe::Error, pack_matrix(f32_matrix(w, 16, 64), opt));
    }

    // The registry falls back to the scalar vec_dot and takes registered implementations.
    void ggufRowDotRegistry() {
        std::mt19937 rng(std::random_device{}());
        const int64_t n = 256, rows = 5;
        const size_t rb = ggml_row_size(GgmlType::Q4_K, n);
        std::vector<uint8_t> w(rb * rows), act(ggml_row_size(GgmlType::Q8_K, n) + 16);
        for (int64_t r = 0; r < rows; ++r) {
            const auto v = random_vec(rng, size_t(n));
            quantize_row(GgmlType::Q4_K, v.data(), w.data() + size_t(r) * rb, n);
        }
        const auto x = random_vec(rng, size_t(n));
        quantize_activation(GgmlType::Q8_K, x.data(), act.data(), n);
        const GgufRowDot& d = gguf_row_dot_scalar(GgmlType::Q4_K);
        std::vector<float> y(rows);
        d.dot_rows(w.data(), rb, rows, act.data(), n, y.data());
        for (int64_t r = 0; r < rows; ++r)
            QCOMPARE(y[size_t(r)],
                     vec_dot(GgmlType::Q4_K, w.data() + size_t(r) * rb, act.data(), n));
        QVERIFY(gguf_row_dot(GgmlType::Q4_K).dot_rows != nullptr);
        QVERIFY_THROWS_EXCEPTION(moe::Error, gguf_row_dot(GgmlType::I32));
    }
};

QTEST_GUILESS_MAIN(TestMoeKernels)
#include "tst_moe_kernels.moc"
