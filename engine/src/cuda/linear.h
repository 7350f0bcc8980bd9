#pragma once
// Dense layers on the GPU through cuBLAS (CUDA builds only): weights resident as bf16,
// activations fp32 in memory and rounded to bf16 for the tensor cores, fp32 accumulation and
// output — the precision llama.cpp's CUDA path uses for bf16 weights.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "cpu/gemm.h"
#include "cuda/basic_kernels.h"
#include "cuda/device_memory.h"

namespace moe::cuda {

// A cuBLAS handle (one per stream that issues GEMMs).
class Blas {
  public:
    Blas();
    ~Blas();
    Blas(const Blas&) = delete;
    Blas& operator=(const Blas&) = delete;
    cublasHandle_t get() const { return h_; }
    void set_stream(cudaStream_t s);

  private:
    cublasHandle_t h_ = nullptr;
};

// A weight matrix [rows, cols] resident on the GPU as bf16, row-major.
struct GpuMatrix {
    DeviceBuffer<uint16_t> w;
    int64_t rows = 0, cols = 0;
    size_t bytes() const { return w.size() * 2; }
};

// Converts any stored matrix (f32/f16/bf16/fp8/GGUF, via row_to_f32) to bf16 and uploads it.
GpuMatrix upload_bf16(const WeightMatrix& m, cudaStream_t s = nullptr);

// y [T, rows] = x [T, cols] · Wᵀ, all device pointers; `scratch` is resized as needed to hold
// x in bf16.
void linear(Blas& blas, const GpuMatrix& w, const float* x, int64_t T, float* y,
            DeviceBuffer<uint16_t>& scratch, cudaStream_t s);

}  // namespace moe::cuda
