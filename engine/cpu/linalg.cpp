// Dense linear algebra on the CPU: float32 GEMM through oneDNN's JIT sgemm (AVX-512 whatever
// OPENBLAS_CORETYPE says; about twice OpenBLAS's AVX2 rate here, measured with `intl bench iternorm`),
// float64 GEMM through OpenBLAS, and the symmetric eigensolver,
// Cholesky factorisation and triangular solves through LAPACK. LAPACK is column-major: a symmetric matrix is
// its own transpose, so a row-major buffer can be handed over as it is; outputs are transposed back.
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include <optional>
#include <vector>

#include "engine/cpu/kernels.h"
#include "engine/error.h"

extern "C" {
void ssyevd_(const char* jobz, const char* uplo, const int* n, float* a, const int* lda, float* w, float* work,
             const int* lwork, int* iwork, const int* liwork, int* info);
void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w, double* work,
             const int* lwork, int* iwork, const int* liwork, int* info);
void spotrf_(const char* uplo, const int* n, float* a, const int* lda, int* info);
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
}

namespace intl::cpu {
namespace {

template <class T> void gemm_typed(const GemmArgs& g) {
  const CBLAS_TRANSPOSE ta = g.trans_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = g.trans_b ? CblasTrans : CblasNoTrans;
  for (int64_t i = 0; i < g.batch; ++i) {
    const T* a = static_cast<const T*>(g.a) + i * g.stride_a;
    const T* b = static_cast<const T*>(g.b) + i * g.stride_b;
    T* c = static_cast<T*>(g.c) + i * g.stride_c;
    if constexpr (std::is_same_v<T, float>) {
      const dnnl_status_t st = dnnl_sgemm(g.trans_a ? 'T' : 'N', g.trans_b ? 'T' : 'N', g.m, g.n, g.k,
                                          float(g.alpha), a, g.lda, b, g.ldb, float(g.beta), c, g.ldc);
      if (st != dnnl_success) throw Error("oneDNN sgemm failed with status " + std::to_string(int(st)));
    } else {
      cblas_dgemm(CblasRowMajor, ta, tb, int(g.m), int(g.n), int(g.k), g.alpha, a, int(g.lda), b, int(g.ldb),
                  g.beta, c, int(g.ldc));
    }
  }
}

template <class T> int syevd(int n, T* a, T* w, std::vector<T>& work, std::vector<int>& iwork) {
  const char jobz = 'V', uplo = 'L';
  int lwork = -1, liwork = -1, info = 0;
  T wq = 0;
  int iq = 0;
  if constexpr (std::is_same_v<T, float>) ssyevd_(&jobz, &uplo, &n, a, &n, w, &wq, &lwork, &iq, &liwork, &info);
  else dsyevd_(&jobz, &uplo, &n, a, &n, w, &wq, &lwork, &iq, &liwork, &info);
  lwork = int(wq);
  liwork = iq;
  if (int(work.size()) < lwork) work.resize(size_t(lwork));
  if (int(iwork.size()) < liwork) iwork.resize(size_t(liwork));
  if constexpr (std::is_same_v<T, float>)
    ssyevd_(&jobz, &uplo, &n, a, &n, w, work.data(), &lwork, iwork.data(), &liwork, &info);
  else
    dsyevd_(&jobz, &uplo, &n, a, &n, w, work.data(), &lwork, iwork.data(), &liwork, &info);
  return info;
}

// LAPACK on one thread for the scope. Measured with a 256 x 256 ssyevd here: 3.9 ms on one thread, 4.9 ms
// with OpenBLAS's two, and 5.5 ms for two matrices solved side by side when OpenBLAS still believes it has
// two threads inside our parallel region (against 4.2 ms when it does not). OpenBLAS's OpenMP build also
// sets OpenMP's thread count when told its own, so the previous count is restored on the way out.
class SerialLapack {
 public:
  SerialLapack() : threads_(openblas_get_num_threads()) {
    if (threads_ != 1) openblas_set_num_threads(1);
  }
  ~SerialLapack() {
    if (threads_ != 1) openblas_set_num_threads(threads_);
  }
  SerialLapack(const SerialLapack&) = delete;
  SerialLapack& operator=(const SerialLapack&) = delete;

 private:
  int threads_;
};

}  // namespace

void gemm(const GemmArgs& args) {
  if (args.m == 0 || args.n == 0) return;
  if (args.dtype == DType::f32) gemm_typed<float>(args);
  else if (args.dtype == DType::f64) gemm_typed<double>(args);
  else throw Error(std::string("gemm on ") + dtype_name(args.dtype));
}

int eigh(const Tensor& a, const Tensor& values, const Tensor& vectors) {
  const int n = int(a.size(-1));
  const int64_t batch = a.numel() / (int64_t(n) * n);
  int first_info = 0;
  // Up to this size one thread solves a matrix faster than two; larger ones keep OpenBLAS's threads.
  // The guard lowers OpenMP's thread count too, so the loop below names its own.
  const int threads = omp_get_max_threads();
  std::optional<SerialLapack> serial;
  if (batch > 1 || n <= 512) serial.emplace();
  auto run = [&](auto z) {
    using T = decltype(z);
    T* pa = static_cast<T*>(a.raw_data());
    T* pw = static_cast<T*>(values.raw_data());
    T* pv = static_cast<T*>(vectors.raw_data());
    // Several matrices: one per thread (LAPACK then runs single-threaded inside the parallel region).
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (batch > 1)
    for (int64_t b = 0; b < batch; ++b) {
      thread_local std::vector<T> work;
      thread_local std::vector<int> iwork;
      T* m = pa + b * n * n;
      const int info = syevd<T>(n, m, pw + b * n, work, iwork);
      if (info != 0) {
#pragma omp critical(intl_eigh_info)
        if (first_info == 0) first_info = info;
      }
      // Column-major eigenvectors read row-major are V^T: transpose into `vectors`.
      T* v = pv + b * n * n;
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) v[i * n + j] = m[j * n + i];
    }
  };
  if (a.dtype() == DType::f32) run(float());
  else run(double());
  return first_info;
}

int cholesky(const Tensor& a) {
  const int n = int(a.size(-1));
  const char uplo = 'U';  // column-major upper of the row-major buffer = row-major lower
  int info = 0;
  auto run = [&](auto z) {
    using T = decltype(z);
    T* p = static_cast<T*>(a.raw_data());
    if constexpr (std::is_same_v<T, float>) spotrf_(&uplo, &n, p, &n, &info);
    else dpotrf_(&uplo, &n, p, &n, &info);
    for (int i = 0; i < n; ++i)
      for (int j = i + 1; j < n; ++j) p[i * n + j] = T(0);
  };
  if (a.dtype() == DType::f32) run(float());
  else run(double());
  return info;
}

void trsm_lower(const Tensor& l, const Tensor& b, bool transpose) {
  const int n = int(l.size(0)), k = int(b.size(1));
  const CBLAS_TRANSPOSE t = transpose ? CblasTrans : CblasNoTrans;
  if (l.dtype() == DType::f32)
    cblas_strsm(CblasRowMajor, CblasLeft, CblasLower, t, CblasNonUnit, n, k, 1.0f, l.data<float>(), n,
                b.data<float>(), k);
  else
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, t, CblasNonUnit, n, k, 1.0, l.data<double>(), n,
                b.data<double>(), k);
}

}  // namespace intl::cpu
