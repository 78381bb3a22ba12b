// Elementwise ops and their gradients. Broadcast gradients come back in the output's shape; the autograd
// engine sums them to each input's shape.
#include "engine/ops/common.h"

namespace intl {
namespace ops {

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    INTL_CHECK(da == db || da == 1 || db == 1, "shapes " + shape_str(a) + " and " + shape_str(b) + " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Tensor unary_kernel(UnaryOp op, const Tensor& x, double s) {
  Tensor xc = x.is_contiguous() ? x : x.detach().contiguous();
  Tensor y = empty_like(xc);
  backend(x.device()).unary(op, xc, y, s);
  return y;
}

Tensor binary_kernel(BinaryOp op, const Tensor& a, const Tensor& b) {
  check_same("binary op", a, b);
  const Shape shape = broadcast_shapes(a.shape(), b.shape());
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  backend(a.device()).binary(op, expand(a.detach(), shape), expand(b.detach(), shape), out);
  return out;
}

}  // namespace ops

using namespace ops;

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = binary_kernel(BinaryOp::add, a, b);
  if (needs_grad({a, b})) record("add", {a, b}, y, [](const Tensor& g) { return std::vector<Tensor>{g, g}; });
  return y;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor y = binary_kernel(BinaryOp::sub, a, b);
  if (needs_grad({a, b}))
    record("sub", {a, b}, y, [](const Tensor& g) { return std::vector<Tensor>{g, neg(g)}; });
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = binary_kernel(BinaryOp::mul, a, b);
  if (needs_grad({a, b})) {
    const bool ga = a.requires_grad(), gb = b.requires_grad();
    record("mul", {a, b}, y, [a = a.detach(), b = b.detach(), ga, gb](const Tensor& g) {
      return std::vector<Tensor>{ga ? mul(g, b) : Tensor(), gb ? mul(g, a) : Tensor()};
    });
  }
  return y;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor y = binary_kernel(BinaryOp::div, a, b);
  if (needs_grad({a, b})) {
    const bool gb = b.requires_grad();
    record("div", {a, b}, y, [b = b.detach(), y = y.detach(), gb](const Tensor& g) {
      Tensor ga = div(g, b);  // d(a/b)/da = 1/b ; d(a/b)/db = -y/b
      return std::vector<Tensor>{ga, gb ? neg(mul(ga, y)) : Tensor()};
    });
  }
  return y;
}

Tensor add(const Tensor& a, double s) {
  Tensor y = unary_kernel(UnaryOp::add_scalar, a, s);
  if (needs_grad({a})) record("add_scalar", {a}, y, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return y;
}

Tensor mul(const Tensor& a, double s) {
  Tensor y = unary_kernel(UnaryOp::scale, a, s);
  if (needs_grad({a})) record("mul_scalar", {a}, y, [s](const Tensor& g) { return std::vector<Tensor>{mul(g, s)}; });
  return y;
}

Tensor neg(const Tensor& x) {
  Tensor y = unary_kernel(UnaryOp::neg, x);
  if (needs_grad({x})) record("neg", {x}, y, [](const Tensor& g) { return std::vector<Tensor>{neg(g)}; });
  return y;
}

Tensor pow(const Tensor& x, double p) {
  Tensor y = unary_kernel(UnaryOp::pow, x, p);
  if (needs_grad({x}))
    record("pow", {x}, y, [x = x.detach(), p](const Tensor& g) {
      return std::vector<Tensor>{mul(g, mul(unary_kernel(UnaryOp::pow, x, p - 1), p))};
    });
  return y;
}

Tensor square(const Tensor& x) {
  Tensor y = unary_kernel(UnaryOp::square, x);
  if (needs_grad({x}))
    record("square", {x}, y, [x = x.detach()](const Tensor& g) { return std::vector<Tensor>{mul(mul(g, x), 2.0)}; });
  return y;
}

Tensor sqrt(const Tensor& x) {
  Tensor y = unary_kernel(UnaryOp::sqrt, x);
  if (needs_grad({x}))
    record("sqrt", {x}, y, [y = y.detach()](const Tensor& g) { return std::vector<Tensor>{div(mul(g, 0.5), y)}; });
  return y;
}

Tensor rsqrt(const Tensor& x) {
  Tensor y = unary_kernel(UnaryOp::rsqrt, x);
  if (needs_grad({x}))  // d x^-1/2 = -1/2 x^-3/2 = -1/2 y^3
    record("rsqrt", {x}, y, [y = y.detach()](const Tensor& g) {
      return std::vector<Tensor>{mul(mul(g, unary_kernel(UnaryOp::pow, y, 3.0)), -0.5)};
    });
  return y;
}

Tensor exp(const Tensor& x) {
  Tensor y = unary_kernel(UnaryOp::exp, x);
  if (needs_grad({x})) record("exp", {x}, y, [y = y.detach()](const Tensor& g) { return std::vector<Tensor>{mul(g, y)}; });
  return y;
}

Tensor log(const Tensor& x) {
  Tensor y = unary_kernel(UnaryOp::log, x);
  if (needs_grad({x})) record("log", {x}, y, [x = x.detach()](const Tensor& g) { return std::vector<Tensor>{div(g, x)}; });
  return y;
}

Tensor abs(const Tensor& x) {
  Tensor y = unary_kernel(UnaryOp::abs, x);
  if (needs_grad({x}))
    record("abs", {x}, y, [x = x.detach()](const Tensor& g) {
      return std::vector<Tensor>{mul(g, unary_kernel(UnaryOp::sign, x))};
    });
  return y;
}

Tensor relu(const Tensor& x) {
  Tensor y = unary_kernel(UnaryOp::relu, x);
  if (needs_grad({x}))
    record("relu", {x}, y, [y = y.detach()](const Tensor& g) {
      return std::vector<Tensor>{binary_kernel(BinaryOp::relu_mask, g, y)};
    });
  return y;
}

}  // namespace intl
