// The emulated cuBLAS and cuSOLVER calls (include/cublas_v2.h, include/cusolverDn.h), from their documented
// column-major semantics: matrix X with leading dimension ld holds X(i, j) at X[i + j * ld]. Naive loops in
// double; syevd hands the symmetric matrix to the CPU backend's eigensolver. Each call checks its pointers are
// device memory and its leading dimensions are legal, as cuBLAS returns INVALID_VALUE for them.
#include <cmath>
#include <cstdio>
#include <vector>

#include "cuda_bf16.h"
#include "cusolverDn.h"
#include "engine/backend.h"

struct cublasContext {};
struct cusolverDnContext {};

namespace {

bool device(const void* p) { return p && emu::is_device_pointer(p); }

cublasStatus_t invalid(const char* what) {
  std::fprintf(stderr, "cublas emulation: %s\n", what);
  return CUBLAS_STATUS_INVALID_VALUE;
}
cusolverStatus_t solver_invalid(const char* what) {
  std::fprintf(stderr, "cusolver emulation: %s\n", what);
  return CUSOLVER_STATUS_INVALID_VALUE;
}

double bf16_round(double v) { return __bfloat162float(__float2bfloat16_rn(float(v))); }

// op(X)(i, j) of a column-major X.
template <class T> double at(const T* X, int ld, cublasOperation_t op, long i, long j) {
  return op == CUBLAS_OP_N ? double(X[i + j * long(ld)]) : double(X[j + i * long(ld)]);
}

template <class T>
cublasStatus_t gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, double alpha, const T* A, int lda,
                    long long sa, const T* B, int ldb, long long sb, double beta, T* C, int ldc, long long sc,
                    int batch, bool bf16) {
  if (lda < std::max(1, ta == CUBLAS_OP_N ? m : k) || ldb < std::max(1, tb == CUBLAS_OP_N ? k : n) ||
      ldc < std::max(1, m))
    return invalid("gemm: a leading dimension is too small");
  for (int b = 0; b < batch; ++b) {
    const T* a = A + b * sa;
    const T* bb = B + b * sb;
    T* c = C + b * sc;
    for (long i = 0; i < m; ++i)
      for (long j = 0; j < n; ++j) {
        double acc = 0;
        for (long l = 0; l < k; ++l) {
          double x = at(a, lda, ta, i, l), y = at(bb, ldb, tb, l, j);
          if (bf16) x = bf16_round(x), y = bf16_round(y);
          acc += x * y;
        }
        T& out = c[i + j * long(ldc)];
        out = T(alpha * acc + (beta != 0 ? beta * double(out) : 0.0));
      }
  }
  return CUBLAS_STATUS_SUCCESS;
}

template <class T>
cublasStatus_t geam(cublasOperation_t ta, cublasOperation_t tb, int m, int n, double alpha, const T* A, int lda,
                    double beta, const T* B, int ldb, T* C, int ldc) {
  if (!device(A) || !device(B) || !device(C)) return invalid("geam: a null or host pointer");
  if (ldc < m) return invalid("geam: ldc < m");
  std::vector<T> out(size_t(m) * size_t(n));
  for (long i = 0; i < m; ++i)
    for (long j = 0; j < n; ++j)
      out[size_t(i + j * m)] = T(alpha * at(A, lda, ta, i, j) + (beta != 0 ? beta * at(B, ldb, tb, i, j) : 0.0));
  for (long i = 0; i < m; ++i)
    for (long j = 0; j < n; ++j) C[i + j * long(ldc)] = out[size_t(i + j * m)];
  return CUBLAS_STATUS_SUCCESS;
}

// Side right only (what the engine uses): X op(A) = alpha B, A n x n triangular, B m x n overwritten by X.
template <class T>
cublasStatus_t trsm(cublasSideMode_t side, cublasFillMode_t uplo, cublasOperation_t trans, cublasDiagType_t diag,
                    int m, int n, double alpha, const T* A, int lda, T* B, int ldb) {
  if (side != CUBLAS_SIDE_RIGHT) return invalid("trsm: only side right is emulated");
  if (!device(A) || !device(B) || lda < n || ldb < m) return invalid("trsm: pointers or leading dimensions");
  // M = op(A) restricted to its triangle: row x of X satisfies x M = alpha b.
  std::vector<double> M(size_t(n) * size_t(n), 0.0);  // M(i, j) at i * n + j
  for (long i = 0; i < n; ++i)
    for (long j = 0; j < n; ++j) {
      const long r = trans == CUBLAS_OP_N ? i : j, c = trans == CUBLAS_OP_N ? j : i;  // element (r, c) of A
      const bool stored = uplo == CUBLAS_FILL_MODE_UPPER ? r <= c : r >= c;
      if (stored) M[size_t(i * n + j)] = (diag == CUBLAS_DIAG_UNIT && r == c) ? 1.0 : double(A[r + c * long(lda)]);
    }
  const bool upper = (uplo == CUBLAS_FILL_MODE_UPPER) == (trans == CUBLAS_OP_N);  // M upper triangular
  std::vector<double> x(static_cast<size_t>(n));
  for (long row = 0; row < m; ++row) {
    // x M = b: column j gives sum_i x_i M(i, j) = b_j. Upper M: x_j from j = 0 up; lower: from n - 1 down.
    for (long t = 0; t < n; ++t) {
      const long j = upper ? t : n - 1 - t;
      double s = alpha * double(B[row + j * long(ldb)]);
      for (long u = 0; u < t; ++u) {
        const long i = upper ? u : n - 1 - u;
        s -= x[size_t(i)] * M[size_t(i * n + j)];
      }
      x[size_t(j)] = s / M[size_t(j * n + j)];
    }
    for (long j = 0; j < n; ++j) B[row + j * long(ldb)] = T(x[size_t(j)]);
  }
  return CUBLAS_STATUS_SUCCESS;
}

template <class T>
cusolverStatus_t syevd(cublasFillMode_t uplo, int n, T* A, int lda, T* W, T* work, int lwork, int* info) {
  if (!device(A) || !device(W) || !device(info) || lda < n) return solver_invalid("syevd: pointers or lda");
  if (lwork < 1 || !device(work)) return solver_invalid("syevd: no workspace of the size asked for");
  using namespace intl;
  Tensor a = Tensor::empty({n, n}, DType::f64, Device::cpu), values = Tensor::empty({n}, DType::f64, Device::cpu);
  Tensor vectors = Tensor::empty({n, n}, DType::f64, Device::cpu);
  double* pa = a.data<double>();
  for (long i = 0; i < n; ++i)
    for (long j = 0; j < n; ++j) {  // the referenced triangle only, mirrored
      const bool stored = uplo == CUBLAS_FILL_MODE_LOWER ? i >= j : i <= j;
      pa[i * n + j] = stored ? double(A[i + j * long(lda)]) : double(A[j + i * long(lda)]);
    }
  *info = cpu_backend().eigh(a, values, vectors);
  const double* v = vectors.data<double>();
  for (long j = 0; j < n; ++j) {
    W[j] = T(values.data<double>()[j]);
    for (long i = 0; i < n; ++i) A[i + j * long(lda)] = T(v[i * n + j]);  // eigenvector j in column j
  }
  return CUSOLVER_STATUS_SUCCESS;
}

// Upper: A = U^T U with U in the upper triangle; lower: A = L L^T in the lower one; the other triangle is kept.
template <class T> cusolverStatus_t potrf(cublasFillMode_t uplo, int n, T* A, int lda, T* work, int lwork, int* info) {
  if (!device(A) || !device(info) || lda < n) return solver_invalid("potrf: pointers or lda");
  if (lwork < 1 || !device(work)) return solver_invalid("potrf: no workspace of the size asked for");
  const bool upper = uplo == CUBLAS_FILL_MODE_UPPER;
  auto f = [&](long i, long j) -> T& { return upper ? A[i + j * long(lda)] : A[j + i * long(lda)]; };  // U(i, j)
  *info = 0;
  for (long j = 0; j < n; ++j) {
    double d = double(f(j, j));
    for (long k = 0; k < j; ++k) d -= double(f(k, j)) * double(f(k, j));
    if (!(d > 0)) {
      *info = int(j + 1);
      return CUSOLVER_STATUS_SUCCESS;
    }
    const double ujj = std::sqrt(d);
    f(j, j) = T(ujj);
    for (long i = j + 1; i < n; ++i) {
      double s = double(f(j, i));
      for (long k = 0; k < j; ++k) s -= double(f(k, j)) * double(f(k, i));
      f(j, i) = T(s / ujj);
    }
  }
  return CUSOLVER_STATUS_SUCCESS;
}

}  // namespace

const char* cublasGetStatusString(cublasStatus_t s) {
  return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_INVALID_VALUE";
}
cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  *handle = new cublasContext();
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                          int k, const void* alpha, const void* A, cudaDataType at_, int lda,
                                          long long sa, const void* B, cudaDataType bt, int ldb, long long sb,
                                          const void* beta, void* C, cudaDataType ct, int ldc, long long sc, int batch,
                                          cublasComputeType_t compute, cublasGemmAlgo_t) {
  if (at_ != bt || at_ != ct) return invalid("gemm: operand types differ");
  if (!device(A) || !device(B) || !device(C)) return invalid("gemm: a null or host pointer");
  if (at_ == CUDA_R_64F) {
    if (compute != CUBLAS_COMPUTE_64F) return invalid("gemm: double data needs CUBLAS_COMPUTE_64F");
    return gemm(ta, tb, m, n, k, *static_cast<const double*>(alpha), static_cast<const double*>(A), lda, sa,
                static_cast<const double*>(B), ldb, sb, *static_cast<const double*>(beta), static_cast<double*>(C),
                ldc, sc, batch, false);
  }
  if (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_FAST_16BF)
    return invalid("gemm: float data needs a 32F compute type");
  return gemm(ta, tb, m, n, k, double(*static_cast<const float*>(alpha)), static_cast<const float*>(A), lda, sa,
              static_cast<const float*>(B), ldb, sb, double(*static_cast<const float*>(beta)), static_cast<float*>(C),
              ldc, sc, batch, compute == CUBLAS_COMPUTE_32F_FAST_16BF);
}

cublasStatus_t cublasSgeam(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                           const float* alpha, const float* A, int lda, const float* beta, const float* B, int ldb,
                           float* C, int ldc) {
  return geam(ta, tb, m, n, *alpha, A, lda, *beta, B, ldb, C, ldc);
}
cublasStatus_t cublasDgeam(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                           const double* alpha, const double* A, int lda, const double* beta, const double* B, int ldb,
                           double* C, int ldc) {
  return geam(ta, tb, m, n, *alpha, A, lda, *beta, B, ldb, C, ldc);
}
cublasStatus_t cublasStrsm(cublasHandle_t, cublasSideMode_t side, cublasFillMode_t uplo, cublasOperation_t trans,
                           cublasDiagType_t diag, int m, int n, const float* alpha, const float* A, int lda, float* B,
                           int ldb) {
  return trsm(side, uplo, trans, diag, m, n, *alpha, A, lda, B, ldb);
}
cublasStatus_t cublasDtrsm(cublasHandle_t, cublasSideMode_t side, cublasFillMode_t uplo, cublasOperation_t trans,
                           cublasDiagType_t diag, int m, int n, const double* alpha, const double* A, int lda,
                           double* B, int ldb) {
  return trsm(side, uplo, trans, diag, m, n, *alpha, A, lda, B, ldb);
}

cusolverStatus_t cusolverDnCreate(cusolverDnHandle_t* handle) {
  *handle = new cusolverDnContext();
  return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t cusolverDnSetStream(cusolverDnHandle_t, cudaStream_t) { return CUSOLVER_STATUS_SUCCESS; }
cusolverStatus_t cusolverDnSsyevd_bufferSize(cusolverDnHandle_t, cusolverEigMode_t, cublasFillMode_t, int n,
                                             const float*, int, const float*, int* lwork) {
  *lwork = 2 * n + 1;
  return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t cusolverDnDsyevd_bufferSize(cusolverDnHandle_t, cusolverEigMode_t, cublasFillMode_t, int n,
                                             const double*, int, const double*, int* lwork) {
  *lwork = 2 * n + 1;
  return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t cusolverDnSsyevd(cusolverDnHandle_t, cusolverEigMode_t, cublasFillMode_t uplo, int n, float* A,
                                  int lda, float* W, float* work, int lwork, int* info) {
  return syevd(uplo, n, A, lda, W, work, lwork, info);
}
cusolverStatus_t cusolverDnDsyevd(cusolverDnHandle_t, cusolverEigMode_t, cublasFillMode_t uplo, int n, double* A,
                                  int lda, double* W, double* work, int lwork, int* info) {
  return syevd(uplo, n, A, lda, W, work, lwork, info);
}
cusolverStatus_t cusolverDnSpotrf_bufferSize(cusolverDnHandle_t, cublasFillMode_t, int n, float*, int, int* lwork) {
  *lwork = n + 1;
  return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t cusolverDnDpotrf_bufferSize(cusolverDnHandle_t, cublasFillMode_t, int n, double*, int, int* lwork) {
  *lwork = n + 1;
  return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t cusolverDnSpotrf(cusolverDnHandle_t, cublasFillMode_t uplo, int n, float* A, int lda, float* work,
                                  int lwork, int* info) {
  return potrf(uplo, n, A, lda, work, lwork, info);
}
cusolverStatus_t cusolverDnDpotrf(cusolverDnHandle_t, cublasFillMode_t uplo, int n, double* A, int lda, double* work,
                                  int lwork, int* info) {
  return potrf(uplo, n, A, lda, work, lwork, info);
}
