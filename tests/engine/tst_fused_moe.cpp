// The fused MoE operator (cpu/moe/fused_moe.h) against run_experts_reference
// (model/moe_block.h) over the same weights: packed BF16/INT8/INT4 experts (the reference gets
// the dequantized packed weights) and GGUF experts used in place (the reference multiplies the
// same GGUF rows), T = 1 and 100, k = 2..8, with and without a GPU-resident expert mask, biases
// and gpt-oss's clamped SwiGLU, for every kernel variant this CPU supports.
#include <QObject>
#include <QTest>

#include "core/error.h"
#include "tst_moe_kernels_common.h"

using namespace moe_test;

class TestFusedMoe : public QObject {
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
                    {"int8", {PackedFormat::INT8, 32, false, false}},
                    {"int4/g32", {PackedFormat::INT4, 32, false, false}},
                    {"int4/g64/min", {PackedFormat::INT4, 64, true, true}}};
        std::random_device rd;
        for (const auto& f : fmts) {
            double worst = 0;
            for (int64_t T : {1, 100}) {
                for (int64_t k = 2; k <= 8; k += 2) {
                    for (bool mask : {false, true}) {
                        FusedCase c;
                        c.experts = 12;
                        c.hidden = 72;  // not a multiple of 16 or 64
                        c.inter = 40;
                        c.T = T;
                        c.k = k;
                        c.opt = f.opt;
                        c.mask = mask;
                        c.biases = k >= 6;
                        c.clamped_swiglu = k == 4;
                        const uint32_t seed = rd();
                        const double err = check_fused(v, c, seed);
                        QVERIFY2(err < format_bar(f.opt.format),
                                 qPrintable(QString("%1 %2 T=%3 k=%4 mask=%5 seed=%6 err=%7")
                                                .arg(kernel_variant_name(v), f.name)
                                                .arg(T)
                                                .arg(k)
                                                .arg(mask)
                                                .arg(seed)
                                                .arg(err)));
                        worst = std::max(worst, err);
                    }
                }
            }
            qInfo("%-7s %-13s fused vs run_experts_reference: worst rel err %.2e (bar %.2f)",
                  kernel_variant_name(v), f.name, worst, format_bar(f.opt.format));
        }
    }

  private slots:
    void scalar() { run_variant(KernelVariant::Scalar); }
    void avx2() { run_variant(KernelVariant::Avx2); }
    void avx512() { run_variant(KernelVariant::Avx512); }
    void amx() { run_variant(KernelVariant::Amx); }

    // GGUF experts used in place through gguf_row_dot: the reference runs the same ggml rows
    // through gemm's vec_dot path, so only float summation order differs.
    void ggufExperts() {
        for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
            for (int64_t T : {1, 100}) {
                FusedCase c;
                c.experts = 6;
                c.hidden = 256;
                c.inter = 512;
                c.T = T;
                c.k = 3;
                c.gguf = true;
                c.gguf_type = t;
                c.mask = T == 100;
                const double err = check_fused(default_kernel_variant(), c, 7u + uint32_t(T));
                qInfo("gguf %s T=%lld: rel err %.2e", ggml_type_name(t).c_str(), (long long)T, err);
                QVERIFY2(err < 1e-5, qPrintable(QString::fromStdString(ggml_type_name(t))));
            }
        }
    }

    // NUMA parts: every expert cut into 2 or 3 slices of the intermediate dimension, computed by
    // that many virtual node pools and merged; against the reference over the same weights.
    void numaParts() {
        for (int parts : {2, 3}) {
            NumaPools pools(NumaTopology::virtual_nodes(parts), false, 1);
            const struct {
                const char* name;
                PackOptions opt;
                double bar;
            } fmts[] = {{"bf16/f32-acts", {PackedFormat::BF16, 32, false, false, true}, 1e-5},
                        {"int8", {PackedFormat::INT8, 32, false, false}, 0.05},
                        {"int4/g32", {PackedFormat::INT4, 32, false, false}, 0.2}};
            for (const auto& f : fmts) {
                for (int64_t T : {1, 37}) {
                    FusedCase c;
                    c.experts = 10;
                    c.hidden = 72;
                    c.inter = 88;  // parts of 32/32/24 or 48/40 rows: uneven, not 64-aligned
                    c.T = T;
                    c.k = 3;
                    c.opt = f.opt;
                    c.biases = T == 37;
                    c.mask = T == 1;
                    c.parts = parts;
                    c.pools = &pools;
                    const double err = check_fused(default_kernel_variant(), c, 11u + uint32_t(T));
                    qInfo("%d parts %s T=%lld: rel err %.2e", parts, f.name, (long long)T, err);
                    QVERIFY2(err < f.bar, qPrintable(QString("%1 parts %2 T=%3 err %4")
                                                         .arg(parts)
                                                         .arg(f.name)
                                                         .arg(T)
                                                         .arg(err)));
                }
            }
            for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_K}) {
                FusedCase c;
                c.experts = 6;
                c.hidden = 256;
                c.inter = 768;  // Q4_K: 3 blocks of 256 over the parts
                c.T = 20;
                c.k = 2;
                c.gguf = true;
                c.gguf_type = t;
                c.parts = parts;
                c.pools = &pools;
                const double err = check_fused(default_kernel_variant(), c, 5u);
                qInfo("%d parts gguf %s: rel err %.2e", parts, ggml_type_name(t).c_str(), err);
                QVERIFY2(err < 1e-5, qPrintable(QString::fromStdString(ggml_type_name(t))));
            }
        }
    }

    // GGUF Q4_K experts repacked (PackedFormat::Q4K), alone and next to a Q6_K down kept in
    // place (Q4_K_M files), in one and three NUMA parts; the reference runs ggml's row dots on
    // the same GGUF bytes, so only the activations' int8 rounding differs.
    void q4kRepackedExperts() {
        NumaPools pools(NumaTopology::virtual_nodes(3), false, 1);
        for (bool q6k_down : {false, true}) {
            for (int parts : {1, 3}) {
                for (int64_t T : {1, 40}) {
                    FusedCase c;
                    c.experts = 6;
                    c.hidden = 512;
                    c.inter = 768;
                    c.T = T;
                    c.k = 3;
                    c.gguf = true;
                    c.gguf_type = GgmlType::Q4_K;
                    if (q6k_down) c.gguf_down_type = GgmlType::Q6_K;
                    c.opt.format = PackedFormat::Q4K;
                    c.biases = T == 40;
                    c.parts = parts;
                    c.pools = parts > 1 ? &pools : nullptr;
                    const double err = check_fused(default_kernel_variant(), c, 3u + uint32_t(T));
                    qInfo("q4k%s parts=%d T=%lld: rel err %.2e", q6k_down ? "+q6_k down" : "",
                          parts, (long long)T, err);
                    QVERIFY2(err < 2e-2, qPrintable(QString::number(err)));
                }
            }
        }
    }

    // A bank cut for 2 nodes cannot run on pools of another size: a clear error, not a crash.
    void partCountMismatchIsAnError() {
        NumaPools pools(NumaTopology::virtual_nodes(3), false, 1);
        FusedCase c;
        c.parts = 2;
        c.pools = &pools;
        bool threw = false;
        try {
            check_fused(default_kernel_variant(), c, 1);
        } catch (const moe::Error& e) {
            threw = QString(e.what()).contains("2 NUMA parts");
        }
        QVERIFY(threw);
    }

    void allExpertsMasked() {
        FusedCase c;
        c.T = 3;
        c.k = 2;
        c.experts = 2;
        std::mt19937 rng(1);
        ExpertBank bank;
        bank.hidden = 16;
        bank.inter = 16;
        std::vector<float> w(256, 0.5f);
        ExpertSource src{
            f32_matrix(w, 16, 16), f32_matrix(w, 16, 16), f32_matrix(w, 16, 16), {}, {}, {}};
        bank.experts.push_back(make_bank_expert(src, PackOptions{}, false));
        bank.experts.push_back(make_bank_expert(src, PackOptions{}, false));
        const std::vector<int32_t> ids{0, 1, 1, 0, 0, 1};
        const std::vector<float> wts(6, 0.5f), x(48, 1.0f);
        const std::vector<uint8_t> skip{1, 1};
        std::vector<float> out(48, 9.0f);
        fused_moe(bank, x.data(), 3, ids.data(), wts.data(), 2, skip.data(), out.data());
        for (float v : out) QCOMPARE(v, 0.0f);
    }
};

QTEST_GUILESS_MAIN(TestFusedMoe)
#include "tst_fused_moe.moc"
