// The shape ops and reductions by value: negative and repeated axes, -1 in reshape, the refusals that name a
// bad argument, views of strided matrices, and the version bumps of in-place statistics.
#include <doctest/doctest.h>

#include <vector>

#include "engine/ops.h"

using namespace intl;

namespace {
Tensor iota(const Shape& shape) {
  std::vector<double> v(size_t(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = double(i);
  return Tensor::from_vector(v, shape, DType::f64);
}
}  // namespace

TEST_CASE("sum and mean take negative axes, and an axis named twice counts once") {
  const Tensor x = iota({2, 3, 4});
  CHECK(sum(x, {-1}).to_vector() == sum(x, {2}).to_vector());
  CHECK(sum(x, {-3, -1}).to_vector() == sum(x, {0, 2}).to_vector());
  CHECK(sum(x, {2, -1}).shape() == Shape{2, 3});
  CHECK(sum(x, {2, -1}).to_vector() == sum(x, {2}).to_vector());
  CHECK(mean(x, {1, -2}).to_vector() == mean(x, {1}).to_vector());
  CHECK(mean(x, {-1}).to_vector() == std::vector<double>{1.5, 5.5, 9.5, 13.5, 17.5, 21.5});
  CHECK_THROWS_WITH(sum(x, {3}), "sum: axis out of range for shape (2, 3, 4)");
  CHECK_THROWS_WITH(sum(x, {-4}), "sum: axis out of range for shape (2, 3, 4)");
}

TEST_CASE("reshape infers one -1, also for an empty tensor, and refuses two") {
  const Tensor x = iota({3, 4});
  CHECK(reshape(x, {-1, 6}).shape() == Shape{2, 6});
  CHECK(reshape(x, {4, -1}).shape() == Shape{4, 3});
  CHECK(reshape(Tensor::zeros({0, 4}, DType::f64), {-1, 0}).shape() == Shape{0, 0});
  CHECK(reshape(Tensor::zeros({0, 4}, DType::f64), {2, -1}).shape() == Shape{2, 0});
  CHECK_THROWS_WITH(reshape(x, {-1, -1}), "reshape: more than one -1 in (-1, -1)");
  CHECK_THROWS_WITH(reshape(x, {5, -1}), "reshape: cannot view (3, 4) as (5, -1)");
}

TEST_CASE("slice refuses a start past its stop; concat refuses shapes that differ off the axis") {
  const Tensor x = iota({3, 4});
  CHECK(slice(x, 1, 2, 2).shape() == Shape{3, 0});
  CHECK_THROWS_WITH(slice(x, 1, 3, 2), "slice [3, 2) out of range for extent 4");
  CHECK_THROWS_WITH(slice(x, 0, 0, 4), "slice [0, 4) out of range for extent 3");
  CHECK_THROWS_WITH(concat({x, iota({2, 5})}, 0), "concat: shapes (3, 4) and (2, 5) differ off the axis");
  CHECK_THROWS_WITH(concat({iota({2, 3, 4}), iota({2, 3, 5})}, 0),
                    "concat: shapes (2, 3, 4) and (2, 3, 5) differ off the axis");
}

// A transposed column slice has strides (1, 5): its diagonal steps by 6.
TEST_CASE("the diagonal of a strided view") {
  const Tensor x = iota({5, 3});                          // x[i][j] = 3 i + j
  const Tensor v = slice(transpose(x), 1, 1, 4);          // v[i][j] = x[j + 1][i], shape (3, 3)
  CHECK(diagonal(v).to_vector() == std::vector<double>{3, 7, 11});
  CHECK(diagonal(iota({3, 3})).to_vector() == std::vector<double>{0, 4, 8});
}

// Kernels may cache on (address, version): a training step of batch_norm_1d updates both running statistics in
// place, so both get a new version; evaluation changes neither.
TEST_CASE("batch_norm_1d in training bumps the versions of both running statistics") {
  const Tensor x = iota({4, 2});
  const Tensor rm = Tensor::zeros({2}, DType::f64), rv = Tensor::ones({2}, DType::f64);
  const uint64_t m0 = rm.version(), v0 = rv.version();
  batch_norm_1d(x, Tensor(), Tensor(), rm, rv, true, 0.1, 1e-5);
  const uint64_t m1 = rm.version(), v1 = rv.version();
  CHECK(m1 != m0);
  CHECK(v1 != v0);
  batch_norm_1d(x, Tensor(), Tensor(), rm, rv, false, 0.1, 1e-5);
  CHECK(rm.version() == m1);
  CHECK(rv.version() == v1);
}

// out = alpha a b + beta out; with an inner extent of 0 the product vanishes and out is scaled by beta.
TEST_CASE("matmul_out with an empty inner extent scales the output by beta") {
  for (const double beta : {0.0, 0.5, 1.0}) {
    CAPTURE(beta);
    const Tensor out = Tensor::full({2, 3}, 4.0, DType::f64);
    matmul_out(Tensor::zeros({2, 0}, DType::f64), Tensor::zeros({0, 3}, DType::f64), out, 1.0, beta);
    CHECK(out.to_vector() == std::vector<double>(6, 4.0 * beta));
  }
  const Tensor out = Tensor::full({2, 2}, 1.0, DType::f64);
  matmul_out(iota({2, 3}), iota({3, 2}), out, 2.0, 0.5);
  CHECK(out.to_vector() == std::vector<double>{20.5, 26.5, 56.5, 80.5});
}

// The solver reads only L's lower triangle, so the upper triangle of a full matrix passed as L gets no gradient.
TEST_CASE("triangular_solve's gradient reaches only the lower triangle of L") {
  for (const bool transposed : {false, true}) {
    CAPTURE(transposed);
    Tensor l = Tensor::from_vector({2, 7, 7, 1, 3, 7, -1, 2, 4}, {3, 3}, DType::f64);  // 7s: never read
    l.requires_grad_(true);
    const Tensor b = iota({3, 2});
    sum(triangular_solve(l, b, transposed)).backward();
    REQUIRE(l.grad().defined());
    const std::vector<double> g = l.grad().to_vector();
    CHECK(g[1] == 0.0);
    CHECK(g[2] == 0.0);
    CHECK(g[5] == 0.0);
    CHECK(g[0] != 0.0);
    CHECK(g[3] != 0.0);
  }
}

TEST_CASE("size takes negative axes and names an axis out of range as given; item needs one element") {
  const Tensor x = iota({3, 4});
  CHECK(x.size(-1) == 4);
  CHECK(x.size(-2) == 3);
  CHECK_THROWS_WITH(x.size(-3), "axis -3 out of range for shape (3, 4)");
  CHECK_THROWS_WITH(x.size(2), "axis 2 out of range for shape (3, 4)");
  CHECK(iota({1, 1}).item() == 0.0);
  CHECK_THROWS_WITH(x.item(), "item() of a tensor with shape (3, 4)");
}

// The stride of an axis of extent 1 never matters: such views are contiguous and need no copy.
TEST_CASE("a view whose only odd strides are on axes of extent 1 is contiguous") {
  CHECK(transpose(iota({1, 3})).is_contiguous());        // (3, 1) with strides (1, 3)
  CHECK(slice(iota({4, 3}), 0, 2, 3).is_contiguous());   // one row
  CHECK_FALSE(slice(iota({4, 3}), 1, 0, 1).is_contiguous());  // one column: rows 3 apart
  CHECK_FALSE(transpose(iota({2, 3})).is_contiguous());
}

TEST_CASE("tensor construction and in-place copies refuse what does not fit, by name") {
  CHECK_THROWS_WITH(Tensor::empty({2, -1}, DType::f32), "tensor shape (2, -1) has a negative extent");
  CHECK_THROWS_WITH(Tensor::from_vector({1, 2, 3, 4, 5}, {2, 2}, DType::f64), "from_vector: 5 values for shape (2, 2)");
  CHECK_THROWS_WITH(Tensor::from_vector({1, 2, 3}, {2, 2}, DType::f64), "from_vector: 3 values for shape (2, 2)");
  Tensor dst = Tensor::zeros({2, 3}, DType::f64);
  CHECK_THROWS_WITH(dst.copy_(iota({6})), "copy_: shape (6,) into (2, 3)");
  CHECK(dst.to_vector() == std::vector<double>(6, 0.0));
  Tensor labels = Tensor::zeros({3}, DType::i64);
  CHECK_THROWS_WITH(labels.requires_grad_(true), "only floating tensors can require grad, not int64");
  CHECK_FALSE(labels.requires_grad());
  labels.requires_grad_(false);  // switching it off is always allowed
}
