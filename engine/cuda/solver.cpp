// The symmetric eigensolver and Cholesky factorisation on cuSOLVER, triangular solves on cuBLAS. As on the
// CPU (engine/cpu/linalg.cpp), a row-major buffer is handed to the column-major solvers as it is: a symmetric
// matrix is its own transpose, the column-major upper factor is the row-major lower one, and eigenvectors come
// back as V^T, which one cuBLAS geam transposes into `vectors`.
#include <vector>

#include "engine/cuda/allocator.h"
#include "engine/cuda/check.h"
#include "engine/cuda/context.h"
#include "engine/cuda/kernels.h"

namespace intl::cuda {
namespace {

// The first nonzero of `count` solver infos on the device (0 when all succeeded). A negative info names an
// argument `routine` rejected: a defect here, not a property of the matrix, so it throws rather than returns.
int first_info(const DeviceBuffer& infos, int64_t count, const char* routine) {
  std::vector<int> host(static_cast<size_t>(count));
  CUDA_CHECK(cudaMemcpyAsync(host.data(), infos.get(), size_t(count) * sizeof(int), cudaMemcpyDeviceToHost, stream()));
  synchronize();
  for (int v : host) {
    if (v < 0) throw Error(std::string("cuSOLVER ") + routine + " rejected its argument " + std::to_string(-v));
    if (v != 0) return v;
  }
  return 0;
}

template <class T> int eigh_typed(const Tensor& a, const Tensor& values, const Tensor& vectors) {
  constexpr bool f32 = std::is_same_v<T, float>;
  const int n = int(a.size(-1));
  const int64_t batch = a.numel() / (int64_t(n) * n);
  T* pa = static_cast<T*>(a.raw_data());
  T* pw = static_cast<T*>(values.raw_data());
  T* pv = static_cast<T*>(vectors.raw_data());
  const cusolverEigMode_t jobz = CUSOLVER_EIG_MODE_VECTOR;
  const cublasFillMode_t uplo = CUBLAS_FILL_MODE_LOWER;
  int lwork = 0;
  if constexpr (f32) CUSOLVER_CHECK(cusolverDnSsyevd_bufferSize(cusolver(), jobz, uplo, n, pa, n, pw, &lwork));
  else CUSOLVER_CHECK(cusolverDnDsyevd_bufferSize(cusolver(), jobz, uplo, n, pa, n, pw, &lwork));
  DeviceBuffer work(size_t(lwork) * sizeof(T));
  DeviceBuffer infos(size_t(batch) * sizeof(int));
  const T one = 1, zero = 0;
  for (int64_t b = 0; b < batch; ++b) {
    T* m = pa + b * n * n;
    T* w = pw + b * n;
    int* info = infos.as<int>() + b;
    if constexpr (f32) {
      CUSOLVER_CHECK(cusolverDnSsyevd(cusolver(), jobz, uplo, n, m, n, w, work.as<T>(), lwork, info));
      CUBLAS_CHECK(cublasSgeam(cublas(), CUBLAS_OP_T, CUBLAS_OP_N, n, n, &one, m, n, &zero, m, n, pv + b * n * n, n));
    } else {
      CUSOLVER_CHECK(cusolverDnDsyevd(cusolver(), jobz, uplo, n, m, n, w, work.as<T>(), lwork, info));
      CUBLAS_CHECK(cublasDgeam(cublas(), CUBLAS_OP_T, CUBLAS_OP_N, n, n, &one, m, n, &zero, m, n, pv + b * n * n, n));
    }
  }
  return first_info(infos, batch, "syevd");
}

template <class T> int cholesky_typed(const Tensor& a) {
  constexpr bool f32 = std::is_same_v<T, float>;
  const int n = int(a.size(-1));
  const int64_t batch = a.numel() / (int64_t(n) * n);
  T* pa = static_cast<T*>(a.raw_data());
  const cublasFillMode_t uplo = CUBLAS_FILL_MODE_UPPER;  // column-major upper = row-major lower
  int lwork = 0;
  if constexpr (f32) CUSOLVER_CHECK(cusolverDnSpotrf_bufferSize(cusolver(), uplo, n, pa, n, &lwork));
  else CUSOLVER_CHECK(cusolverDnDpotrf_bufferSize(cusolver(), uplo, n, pa, n, &lwork));
  DeviceBuffer work(size_t(lwork) * sizeof(T));
  DeviceBuffer infos(size_t(batch) * sizeof(int));
  for (int64_t b = 0; b < batch; ++b) {
    T* m = pa + b * n * n;
    int* info = infos.as<int>() + b;
    if constexpr (f32) CUSOLVER_CHECK(cusolverDnSpotrf(cusolver(), uplo, n, m, n, work.as<T>(), lwork, info));
    else CUSOLVER_CHECK(cusolverDnDpotrf(cusolver(), uplo, n, m, n, work.as<T>(), lwork, info));
  }
  zero_upper_triangle(a);
  return first_info(infos, batch, "potrf");
}

}  // namespace

int eigh(const Tensor& a, const Tensor& values, const Tensor& vectors) {
  INTL_CHECK(a.is_contiguous() && values.is_contiguous() && vectors.is_contiguous(), "eigh: contiguous tensors only");
  if (a.numel() == 0) return 0;
  if (a.dtype() == DType::f32) return eigh_typed<float>(a, values, vectors);
  INTL_CHECK(a.dtype() == DType::f64, std::string("eigh on ") + dtype_name(a.dtype()));
  return eigh_typed<double>(a, values, vectors);
}

int cholesky(const Tensor& a) {
  INTL_CHECK(a.is_contiguous(), "cholesky: contiguous tensor only");
  if (a.numel() == 0) return 0;
  if (a.dtype() == DType::f32) return cholesky_typed<float>(a);
  INTL_CHECK(a.dtype() == DType::f64, std::string("cholesky on ") + dtype_name(a.dtype()));
  return cholesky_typed<double>(a);
}

// Row-major op(L) X = B is column-major X' op(L)^T = B' with X' = X^T (k x n) and L's buffer read as L^T,
// an upper-triangular matrix U: op(L)^T is U (no transpose) or U^T (transpose). Hence side right, upper.
void trsm_lower(const Tensor& l, const Tensor& b, bool transpose) {
  INTL_CHECK(l.is_contiguous() && b.is_contiguous(), "trsm_lower: contiguous tensors only");
  const int n = int(l.size(0)), k = int(b.size(1));
  if (n == 0 || k == 0) return;
  const cublasOperation_t op = transpose ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (l.dtype() == DType::f32) {
    const float one = 1;
    CUBLAS_CHECK(cublasStrsm(cublas(), CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_UPPER, op, CUBLAS_DIAG_NON_UNIT, k, n, &one,
                             l.data<float>(), n, b.data<float>(), k));
  } else {
    const double one = 1;
    CUBLAS_CHECK(cublasDtrsm(cublas(), CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_UPPER, op, CUBLAS_DIAG_NON_UNIT, k, n, &one,
                             l.data<double>(), n, b.data<double>(), k));
  }
}

}  // namespace intl::cuda
