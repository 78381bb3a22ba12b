// The CPU eigensolver's plumbing: a batch is solved one matrix per thread with LAPACK held to one thread, which
// must give what one-at-a-time solves give and leave OpenMP's and OpenBLAS's thread counts as they were.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "engine/backend.h"
#include "engine/ops.h"

extern "C" int openblas_get_num_threads(void);

using namespace intl;

namespace {

Tensor spd_batch(int64_t batch, int64_t n, DType dtype) {
  Tensor a = Tensor::randn({batch, n, n}, 7, 1, dtype);
  return add(matmul(a, transpose(a)), mul(eye(n, dtype), double(n)));
}

// The backend's batched solve (the op is 2-D; the spectral INTL loss calls the backend with both views).
EighResult eigh_batched(const Tensor& a) {
  const int64_t batch = a.size(0), n = a.size(1);
  Tensor work = a.clone();  // destroyed by the solver
  EighResult r{Tensor::empty({batch, n}, a.dtype()), Tensor::empty({batch, n, n}, a.dtype())};
  REQUIRE(backend(Device::cpu).eigh(work, r.values, r.vectors) == 0);
  return r;
}

}  // namespace

TEST_CASE("batched eigh equals one-at-a-time solves, in float32 and float64") {
  for (DType dtype : {DType::f32, DType::f64}) {
    const Tensor a = spd_batch(3, 24, dtype);
    const EighResult all = eigh_batched(a);
    for (int64_t b = 0; b < 3; ++b) {
      const EighResult one = eigh(reshape(slice(a, 0, b, b + 1), {24, 24}));
      const std::vector<double> v_all = reshape(slice(all.values, 0, b, b + 1), {24}).to_vector();
      const std::vector<double> v_one = one.values.to_vector();
      // The same LAPACK call on the same matrix on one thread: the same bits.
      for (size_t i = 0; i < v_one.size(); ++i) CHECK(v_all[i] == v_one[i]);
      const std::vector<double> u_all = reshape(slice(all.vectors, 0, b, b + 1), {24, 24}).to_vector();
      const std::vector<double> u_one = one.vectors.to_vector();
      for (size_t i = 0; i < u_one.size(); ++i) CHECK(u_all[i] == u_one[i]);
    }
  }
}

TEST_CASE("eigh leaves the OpenMP and OpenBLAS thread counts as it found them") {
  const int omp_before = omp_get_max_threads(), blas_before = openblas_get_num_threads();
  eigh_batched(spd_batch(2, 16, DType::f32));              // batched: one matrix per thread
  eigh(reshape(spd_batch(1, 16, DType::f64), {16, 16}));    // small: LAPACK on one thread
  eigh(reshape(spd_batch(1, 600, DType::f64), {600, 600})); // large: OpenBLAS keeps its threads
  CHECK(omp_get_max_threads() == omp_before);
  CHECK(openblas_get_num_threads() == blas_before);
}
