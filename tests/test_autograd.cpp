// The tape itself: accumulation into leaves over several backward passes, a graph walked twice, no-grad scopes
// (nested), and a node that no gradient reaches.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"

using namespace intl;

namespace {
std::vector<double> exp_of(const std::vector<double>& v, double times) {
  std::vector<double> out;
  for (double x : v) out.push_back(times * std::exp(x));
  return out;
}
}  // namespace

TEST_CASE("backward accumulates into a leaf's gradient until it is cleared, also when the leaf is the root") {
  Tensor x = Tensor::from_vector({1.0, 2.0}, {2}, DType::f64);
  x.requires_grad_(true);
  x.backward(Tensor::from_vector({0.5, -1.0}, {2}, DType::f64));
  x.backward(Tensor::from_vector({0.25, 3.0}, {2}, DType::f64));
  CHECK(x.grad().to_vector() == std::vector<double>{0.75, 2.0});
  sum(mul(x, 2.0)).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{2.75, 4.0});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

// Each pass starts from fresh intermediate gradients: walking the same graph twice gives twice the gradient, not
// three times (stale gradients left on an inner node would add again).
TEST_CASE("walking the same graph twice doubles the leaf's gradient") {
  const std::vector<double> v{0.5, -1.0, 2.0};
  Tensor x = Tensor::from_vector(v, {3}, DType::f64);
  x.requires_grad_(true);
  const Tensor loss = sum(exp(mul(x, 1.0)));
  loss.backward();
  CHECK(x.grad().to_vector() == exp_of(v, 1.0));
  loss.backward();
  const std::vector<double> g = x.grad().to_vector(), want = exp_of(v, 2.0);
  for (size_t i = 0; i < v.size(); ++i) CHECK(g[i] == doctest::Approx(want[i]));
}

TEST_CASE("no-grad scopes record nothing, nest, and restore what they found") {
  Tensor x = Tensor::ones({2}, DType::f64);
  x.requires_grad_(true);
  CHECK(grad_enabled());
  {
    NoGradGuard outer;
    CHECK_FALSE(mul(x, 2.0).requires_grad());
    CHECK_FALSE(add(x, x).requires_grad());
    {
      NoGradGuard inner;
      CHECK_FALSE(grad_enabled());
    }
    CHECK_FALSE(grad_enabled());  // the inner scope restores "disabled", not "enabled"
    CHECK_FALSE(exp(x).requires_grad());
  }
  CHECK(grad_enabled());
  CHECK(mul(x, 2.0).requires_grad());
}

// A value taken out of the graph (requires_grad_(false) on a computed tensor) passes no gradient back: the node
// that made it is on the tape but no gradient reaches it, and it is skipped.
TEST_CASE("a node that no gradient reaches is skipped") {
  Tensor x = Tensor::from_vector({1.0, 2.0}, {2}, DType::f64);
  Tensor w = Tensor::from_vector({3.0, -1.0}, {2}, DType::f64);
  x.requires_grad_(true);
  w.requires_grad_(true);
  Tensor y = exp(x);
  y.requires_grad_(false);
  sum(mul(y, w)).backward();
  CHECK(w.grad().to_vector() == exp_of({1.0, 2.0}, 1.0));
  CHECK_FALSE(x.grad().defined());
}

// add and sub return a gradient for both operands; one that does not require grad must not receive it.
TEST_CASE("an input that does not require grad gets no gradient") {
  Tensor x = Tensor::from_vector({1.0, 2.0}, {2}, DType::f64);
  const Tensor c = Tensor::from_vector({5.0, 6.0}, {2}, DType::f64);
  x.requires_grad_(true);
  sum(sub(add(x, c), c)).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{1.0, 1.0});
  CHECK_FALSE(c.grad().defined());
}

TEST_CASE("backward without a gradient needs a scalar, and a tensor that requires grad") {
  Tensor x = Tensor::from_vector({1.0, 2.0}, {2}, DType::f64);
  x.requires_grad_(true);
  CHECK_THROWS_WITH(mul(x, 2.0).backward(), "backward() without a gradient needs a scalar, not shape (2,)");
  CHECK_THROWS_WITH(Tensor::ones({1}, DType::f64).backward(), "backward() on a tensor that does not require grad");
}
