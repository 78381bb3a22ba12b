// GEMM on cuBLAS. The engine's matrices are row-major and cuBLAS's column-major: a row-major (m x n) C is a
// column-major (n x m) C^T, and C^T = op(B)^T op(A)^T, so every call swaps the operands (B first) and the
// extents (n, m) and keeps the leading dimensions. One strided-batched call serves batch 1 and batch > 1.
#include <algorithm>

#include "engine/cuda/check.h"
#include "engine/cuda/context.h"
#include "engine/cuda/kernels.h"

namespace intl::cuda {
namespace {

int checked_int(int64_t v, const char* what) {
  INTL_CHECK(v >= 0 && v <= 0x7fffffff, std::string("gemm: ") + what + " = " + std::to_string(v) +
                                            " exceeds cuBLAS's 32-bit limit");
  return int(v);
}

}  // namespace

void gemm(const GemmArgs& g) {
  if (g.m == 0 || g.n == 0 || g.batch == 0) return;
  INTL_CHECK(g.dtype == DType::f32 || g.dtype == DType::f64, std::string("gemm on ") + dtype_name(g.dtype));
  const cublasOperation_t op_a = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int m = checked_int(g.m, "m"), n = checked_int(g.n, "n"), k = checked_int(g.k, "k");
  // Leading dimensions of 0 come only with empty extents; cuBLAS wants at least 1.
  const int lda = std::max(1, checked_int(g.lda, "lda")), ldb = std::max(1, checked_int(g.ldb, "ldb"));
  const int ldc = std::max(1, checked_int(g.ldc, "ldc"));
  const int batch = checked_int(g.batch, "batch");
  if (g.dtype == DType::f64) {
    const double alpha = g.alpha, beta = g.beta;
    CUBLAS_CHECK(cublasGemmStridedBatchedEx(cublas(), op_b, op_a, n, m, k, &alpha, g.b, CUDA_R_64F, ldb,
                                            g.stride_b, g.a, CUDA_R_64F, lda, g.stride_a, &beta, g.c, CUDA_R_64F,
                                            ldc, g.stride_c, batch, CUBLAS_COMPUTE_64F, CUBLAS_GEMM_DEFAULT));
    return;
  }
  // float32 storage either way; bf16 lets cuBLAS round the inputs to bfloat16 on tensor cores and accumulate
  // in float32 (no conversion buffers: the rounding happens inside the kernel).
  const cublasComputeType_t compute = g.bf16 ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F;
  const float alpha = float(g.alpha), beta = float(g.beta);
  CUBLAS_CHECK(cublasGemmStridedBatchedEx(cublas(), op_b, op_a, n, m, k, &alpha, g.b, CUDA_R_32F, ldb, g.stride_b,
                                          g.a, CUDA_R_32F, lda, g.stride_a, &beta, g.c, CUDA_R_32F, ldc, g.stride_c,
                                          batch, compute, CUBLAS_GEMM_DEFAULT));
}

}  // namespace intl::cuda
