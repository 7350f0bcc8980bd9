// linear.h: cuBLAS GemmEx on bf16 tensors with fp32 compute (host code; CUDA builds only).
#if defined(MOE_HAVE_CUDA)

#include <string>
#include <vector>

#include "core/dtype.h"
#include "cuda/linear.h"

namespace moe::cuda {
namespace {

const char* blas_status(cublasStatus_t s) {
    switch (s) {
        case CUBLAS_STATUS_NOT_INITIALIZED:
            return "not initialized";
        case CUBLAS_STATUS_ALLOC_FAILED:
            return "allocation failed";
        case CUBLAS_STATUS_INVALID_VALUE:
            return "invalid value";
        case CUBLAS_STATUS_ARCH_MISMATCH:
            return "architecture mismatch";
        case CUBLAS_STATUS_EXECUTION_FAILED:
            return "execution failed";
        case CUBLAS_STATUS_NOT_SUPPORTED:
            return "not supported";
        default:
            return "error";
    }
}

void check(cublasStatus_t s, const char* what) {
    // cuBLAS reports its failures in its status; a runtime error it met and handled on the way
    // (e.g. probing a function attribute) would otherwise linger and be blamed on the next
    // kernel launch's check.
    (void)cudaGetLastError();
    if (s != CUBLAS_STATUS_SUCCESS)
        throw Error(std::string("cuBLAS ") + what + " failed: " + blas_status(s) + " (" +
                    std::to_string(int(s)) + ")");
}

}  // namespace

Blas::Blas() {
    check(cublasCreate(&h_), "cublasCreate");
}

Blas::~Blas() {
    if (h_) cublasDestroy(h_);
    (void)cudaGetLastError();  // see check()
}

void Blas::set_stream(cudaStream_t s) {
    check(cublasSetStream(h_, s), "cublasSetStream");
}

GpuMatrix upload_bf16(const WeightMatrix& m, cudaStream_t s) {
    GpuMatrix g;
    g.rows = m.rows;
    g.cols = m.cols;
    std::vector<uint16_t> host(size_t(m.rows * m.cols));
    std::vector<float> row(size_t(m.cols));
    for (int64_t r = 0; r < m.rows; ++r) {
        m.row_to_f32(r, row.data());
        for (int64_t c = 0; c < m.cols; ++c)
            host[size_t(r * m.cols + c)] = f32_to_bf16(row[size_t(c)]);
    }
    g.w = DeviceBuffer<uint16_t>(host.size());
    g.w.upload(host.data(), host.size(), s);
    MOE_CUDA(cudaStreamSynchronize(s));  // `host` goes out of scope
    return g;
}

GpuMatrix upload_weights(const WeightMatrix& m, cudaStream_t s) {
    const bool bf16 = m.ggml ? m.ggml_type != GgmlType::F32 && m.ggml_type != GgmlType::F16
                             : m.dtype == DType::BF16;
    if (bf16) return upload_bf16(m, s);
    GpuMatrix g;
    g.rows = m.rows;
    g.cols = m.cols;
    std::vector<float> host(size_t(m.rows * m.cols));
    for (int64_t r = 0; r < m.rows; ++r) m.row_to_f32(r, host.data() + r * m.cols);
    g.wf = DeviceBuffer<float>(host.size());
    g.wf.upload(host.data(), host.size(), s);
    MOE_CUDA(cudaStreamSynchronize(s));  // `host` goes out of scope
    return g;
}

void linear(Blas& blas, const GpuMatrix& w, const float* x, int64_t T, float* y,
            DeviceBuffer<uint16_t>& scratch, cudaStream_t s) {
    if (T == 0) return;
    if (w.f32()) {
        blas.set_stream(s);
        const float alpha = 1.0f, beta = 0.0f;
        check(cublasSgemm(blas.get(), CUBLAS_OP_T, CUBLAS_OP_N, int(w.rows), int(T), int(w.cols),
                          &alpha, w.wf.data(), int(w.cols), x, int(w.cols), &beta, y, int(w.rows)),
              "Sgemm (fp32 linear)");
        return;
    }
    linear_bf16(blas, w.w.data(), w.rows, w.cols, x, T, y, scratch, s);
}

void linear_bf16(Blas& blas, const uint16_t* w, int64_t rows, int64_t cols, const float* x,
                 int64_t T, float* y, DeviceBuffer<uint16_t>& scratch, cudaStream_t s) {
    if (T == 0) return;
    const size_t need = size_t(T * cols);
    if (scratch.size() < need) scratch = DeviceBuffer<uint16_t>(need);
    to_bf16(x, int64_t(need), scratch.data(), s);
    blas.set_stream(s);
    const float alpha = 1.0f, beta = 0.0f;
    // Row-major Y[T, N] = X[T, K] · W[N, K]ᵀ is column-major Yᵀ[N, T] = op(W)[N, K] · Xᵀ[K, T]
    // with W read as the column-major [K, N] matrix it is in memory, transposed.
    check(cublasGemmEx(blas.get(), CUBLAS_OP_T, CUBLAS_OP_N, int(rows), int(T), int(cols), &alpha,
                       w, CUDA_R_16BF, int(cols), scratch.data(), CUDA_R_16BF, int(cols), &beta, y,
                       CUDA_R_32F, int(rows), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
          "GemmEx (bf16 linear)");
}

}  // namespace moe::cuda

#endif  // MOE_HAVE_CUDA
