// Matrix products on the backend's GEMM: 2-D and batched (rank 3) matmul, and linear. Transposed views are
// passed to GEMM as transpose flags rather than copied. Each product runs in the precision in effect
// (engine/precision.h); a backward pass runs under its forward's (engine/autograd.cpp).
#include "engine/ops/common.h"
#include "engine/precision.h"

namespace intl {
using namespace ops;

namespace {

// A matrix operand (the last two axes) as GEMM sees it: data, transpose flag, leading dimension.
struct GemmOperand {
  Tensor t;  // keeps the memory alive
  bool trans = false;
  int64_t ld = 0;
  int64_t batch_stride = 0;
};

GemmOperand gemm_operand(const Tensor& x) {
  const int64_t r = x.dim();
  const int64_t rows = x.shape()[size_t(r - 2)], cols = x.shape()[size_t(r - 1)];
  const int64_t s0 = x.strides()[size_t(r - 2)], s1 = x.strides()[size_t(r - 1)];
  const int64_t bs = r == 3 ? x.strides()[0] : 0;
  const bool batch_ok = r == 2 || x.shape()[0] == 1 || bs >= rows * cols;
  if (batch_ok && (s1 == 1 || cols == 1) && s0 >= std::max<int64_t>(cols, 1)) return {x, false, s0, bs};
  if (batch_ok && (s0 == 1 || rows == 1) && s1 >= std::max<int64_t>(rows, 1)) return {x, true, s1, bs};
  Tensor c = x.detach().contiguous();
  return {c, false, cols, r == 3 ? rows * cols : 0};
}

// c (batch x m x n; rows may be strided, columns contiguous) = alpha a b + beta c.
void gemm_into(const Tensor& a, const Tensor& b, const Tensor& c, double alpha, double beta) {
  if (a.size(-1) == 0) {  // an empty inner extent: alpha a b is zero, c becomes beta c
    if (beta == 0.0) backend(c.device()).fill(c, 0.0);
    else if (beta != 1.0) backend(c.device()).copy(mul(c.detach(), beta), c);
    return;
  }
  const GemmOperand A = gemm_operand(a), B = gemm_operand(b);
  GemmArgs g;
  g.trans_a = A.trans;
  g.trans_b = B.trans;
  g.m = a.size(-2);
  g.k = a.size(-1);
  g.n = b.size(-1);
  g.alpha = alpha;
  g.beta = beta;
  g.a = A.t.raw_data(); g.lda = A.ld; g.stride_a = A.batch_stride;
  g.b = B.t.raw_data(); g.ldb = B.ld; g.stride_b = B.batch_stride;
  g.c = c.raw_data();   g.ldc = c.strides()[size_t(c.dim() - 2)];  g.stride_c = c.dim() == 3 ? c.strides()[0] : 0;
  g.batch = c.dim() == 3 ? c.size(0) : 1;
  g.dtype = c.dtype();
  g.bf16 = matmul_in_bf16(g.dtype);
  if (g.dtype == DType::f32) count_matmul(g.bf16);
  backend(c.device()).gemm(g);
}

}  // namespace

void matmul_out(const Tensor& a, const Tensor& b, const Tensor& out, double alpha, double beta) {
  check_same("matmul_out", a, b);
  check_same("matmul_out", a, out);
  INTL_CHECK(a.dim() == 2 && b.dim() == 2 && out.dim() == 2 && a.size(1) == b.size(0) && out.size(0) == a.size(0) &&
                 out.size(1) == b.size(1),
             "matmul_out: shapes " + shape_str(a.shape()) + " @ " + shape_str(b.shape()) + " -> " +
                 shape_str(out.shape()));
  INTL_CHECK((out.strides()[1] == 1 || out.size(1) == 1) && out.strides()[0] >= out.size(1),
             "matmul_out: the output's rows must be contiguous");
  gemm_into(a, b, out, alpha, beta);
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_same("matmul", a, b);
  INTL_CHECK(is_float(a.dtype()), "matmul needs floating tensors");
  INTL_CHECK((a.dim() == 2 && b.dim() == 2) || (a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0)),
             "matmul: shapes " + shape_str(a.shape()) + " and " + shape_str(b.shape()) +
                 " (2-D, or 3-D with equal batch)");
  INTL_CHECK(a.size(-1) == b.size(-2), "matmul: inner extents differ in " + shape_str(a.shape()) + " @ " +
                                           shape_str(b.shape()));
  Shape shape = a.shape();
  shape.back() = b.size(-1);
  Tensor y = Tensor::empty(shape, a.dtype(), a.device());
  gemm_into(a, b, y, 1.0, 0.0);
  if (needs_grad({a, b})) {
    const bool ga = a.requires_grad(), gb = b.requires_grad();
    record("matmul", {a, b}, y, [a = a.detach(), b = b.detach(), ga, gb](const Tensor& g) {
      // dA = G B^T, dB = A^T G
      return std::vector<Tensor>{ga ? matmul(g, transpose(b)) : Tensor(), gb ? matmul(transpose(a), g) : Tensor()};
    });
  }
  return y;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  INTL_CHECK(x.dim() == 2 && w.dim() == 2 && x.size(1) == w.size(1),
             "linear: input " + shape_str(x.shape()) + " and weight " + shape_str(w.shape()) + " (out x in)");
  check_same("linear", x, w);
  if (b.defined()) check_same("linear", x, b);
  Tensor y = Tensor::empty({x.size(0), w.size(0)}, x.dtype(), x.device());
  if (b.defined()) {
    INTL_CHECK(b.dim() == 1 && b.size(0) == w.size(0), "linear: bias " + shape_str(b.shape()) + " for weight " +
                                                           shape_str(w.shape()));
    backend(x.device()).copy(expand(b.detach(), y.shape()), y);
    gemm_into(x, transpose(w.detach()), y, 1.0, 1.0);
  } else {
    gemm_into(x, transpose(w.detach()), y, 1.0, 0.0);
  }
  if (needs_grad({x, w, b})) {
    const bool gx = x.requires_grad(), gw = w.requires_grad(), gb = b.defined() && b.requires_grad();
    record("linear", {x, w, b}, y, [x = x.detach(), w = w.detach(), gx, gw, gb](const Tensor& g) {
      // dx = G W, dW = G^T x, db = sum over rows of G
      return std::vector<Tensor>{gx ? matmul(g, w) : Tensor(), gw ? matmul(transpose(g), x) : Tensor(),
                                 gb ? sum(g, {0}) : Tensor()};
    });
  }
  return y;
}

}  // namespace intl
