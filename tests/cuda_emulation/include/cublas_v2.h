// CUDA emulation (tests/cuda_emulation): the cuBLAS names engine/cuda/check.h and context.h mention. No
// cuBLAS call is emulated: the emulated backend answers GEMM and triangular solves with the CPU's.
#pragma once
#include "cuda_runtime.h"
struct cublasContext;
using cublasHandle_t = cublasContext*;
enum cublasStatus_t { CUBLAS_STATUS_SUCCESS = 0 };
inline const char* cublasGetStatusString(cublasStatus_t) { return "cuBLAS status"; }
