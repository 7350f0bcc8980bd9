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

// A weight matrix [rows, cols] resident on the GPU, row-major: bf16 (`w`), or fp32 (`wf`) for
// weights that bf16 cannot hold exactly.
struct GpuMatrix {
    DeviceBuffer<uint16_t> w;
    DeviceBuffer<float> wf;
    int64_t rows = 0, cols = 0;
    bool f32() const { return wf.size() > 0; }
    size_t bytes() const { return w.size() * 2 + wf.size() * 4; }
};

// Converts any stored matrix (f32/f16/bf16/fp8/GGUF, via row_to_f32) to bf16 and uploads it.
GpuMatrix upload_bf16(const WeightMatrix& m, cudaStream_t s = nullptr);

// Uploads `m` without changing its values where that is affordable: bf16 and GGUF weights as
// bf16 (GGUF blocks dequantized: the values llama.cpp's GPU path uses too), F32, F16 and FP8
// (with its block scales applied) as fp32.
GpuMatrix upload_weights(const WeightMatrix& m, cudaStream_t s = nullptr);

// y [T, rows] = x [T, cols] · Wᵀ, all device pointers: bf16 weights through bf16 tensor-core
// GEMMs (`scratch` is resized as needed to hold x in bf16), fp32 weights through an fp32 GEMM.
void linear(Blas& blas, const GpuMatrix& w, const float* x, int64_t T, float* y,
            DeviceBuffer<uint16_t>& scratch, cudaStream_t s);
// The bf16 case over weights the caller owns (e.g. an expert streamed for one batch).
void linear_bf16(Blas& blas, const uint16_t* w, int64_t rows, int64_t cols, const float* x,
                 int64_t T, float* y, DeviceBuffer<uint16_t>& scratch, cudaStream_t s);

}  // namespace moe::cuda
