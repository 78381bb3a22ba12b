// Symmetric eigendecomposition, Cholesky and triangular solves, with their backward formulas. The solvers
// read only one triangle of their input (eigh the row-major upper, Cholesky the lower), so gradients are
// returned symmetrised (eigh, Cholesky) or restricted to the lower triangle (triangular solve).
#include "engine/ops/common.h"

namespace intl {
using namespace ops;

namespace {

Tensor lower_mask(int64_t n, DType dtype, Device device) {
  return host_constant("lower " + std::to_string(n) + " " + dtype_name(dtype), device, [n, dtype] {
    Tensor m = Tensor::zeros({n, n}, DType::f64);
    double* p = m.data<double>();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j <= i; ++j) p[i * n + j] = 1.0;
    return m.to(dtype);
  });
}

Tensor symmetrize(const Tensor& g) { return mul(add(g, transpose(g)), 0.5); }

// X solving op(L) X = B, as a fresh tensor (no autograd).
Tensor solve_lower(const Tensor& l, const Tensor& b, bool transpose_l) {
  Tensor x = b.clone();
  Tensor lc = l.is_contiguous() ? l : l.detach().contiguous();
  backend(l.device()).trsm_lower(lc, x, transpose_l);
  return x;
}

void check_square(const char* op, const Tensor& a) {
  INTL_CHECK(a.dim() == 2 && a.size(0) == a.size(1),
             std::string(op) + " needs a square matrix, got " + shape_str(a.shape()));
  INTL_CHECK(is_float(a.dtype()), std::string(op) + " needs a floating matrix");
}

}  // namespace

EighResult eigh(const Tensor& a) {
  check_square("eigh", a);
  const int64_t n = a.size(0);
  Tensor work = a.detach().clone();
  Tensor values = Tensor::empty({n}, a.dtype(), a.device());
  Tensor vectors = Tensor::empty({n, n}, a.dtype(), a.device());
  const int info = backend(a.device()).eigh(work, values, vectors);
  if (info != 0)
    throw NumericalError("eigh: the symmetric eigensolver did not converge (info " + std::to_string(info) + ") on a " +
                std::to_string(n) + "x" + std::to_string(n) + " matrix");
  if (needs_grad({a})) {
    std::vector<Tensor*> outs{&values, &vectors};
    record("eigh", {a}, outs, [w = values.detach(), v = vectors.detach(), n](const std::vector<Tensor>& g) {
      // With M = V^T dA V: dw = diag(M), dV = V (F o M), F_ij = 1 / (w_j - w_i) off the diagonal. Hence
      // gA = V (diag(gw) + F o (V^T gV)) V^T, symmetrised.
      Tensor inner = Tensor::zeros({n, n}, w.dtype(), w.device());
      if (g[1].defined()) {
        Tensor wr = reshape(w, {1, n}), wc = reshape(w, {n, 1});
        Tensor diff = sub(wr, wc);                                   // w_j - w_i
        Tensor f = div(Tensor::ones({n, n}, w.dtype(), w.device()), add(diff, eye(n, w.dtype(), w.device())));
        f = sub(f, eye(n, w.dtype(), w.device()));                   // zero diagonal
        inner = mul(f, matmul(transpose(v), g[1]));
      }
      if (g[0].defined()) inner = add(inner, mul(eye(n, w.dtype(), w.device()), reshape(g[0], {1, n})));
      return std::vector<Tensor>{symmetrize(matmul(matmul(v, inner), transpose(v)))};
    });
  }
  return {values, vectors};
}

Tensor cholesky(const Tensor& a) {
  check_square("cholesky", a);
  Tensor l = a.detach().clone();
  const int info = backend(a.device()).cholesky(l);
  if (info != 0)
    throw NumericalError("cholesky: matrix is not positive definite (leading minor " + std::to_string(info) + ")");
  if (needs_grad({a})) {
    record("cholesky", {a}, l, [l = l.detach()](const Tensor& gl) {
      // Murray (2016): gA = sym(L^-T Phi(L^T gL) L^-1), Phi = lower triangle with the diagonal halved.
      const int64_t n = l.size(0);
      Tensor mask = lower_mask(n, l.dtype(), l.device());
      Tensor phi = mul(matmul(transpose(l), gl), sub(mask, mul(eye(n, l.dtype(), l.device()), 0.5)));
      Tensor s = solve_lower(l, phi, true);                                   // L^-T Phi
      Tensor ga = transpose(solve_lower(l, transpose(s).contiguous(), true));  // (L^-T S^T)^T = S L^-1
      return std::vector<Tensor>{symmetrize(ga)};
    });
  }
  return l;
}

Tensor triangular_solve(const Tensor& l, const Tensor& b, bool transpose_l) {
  check_square("triangular_solve", l);
  check_same("triangular_solve", l, b);
  INTL_CHECK(b.dim() == 2 && b.size(0) == l.size(0), "triangular_solve: right-hand side " + shape_str(b.shape()) +
                                                         " for a matrix " + shape_str(l.shape()));
  Tensor x = solve_lower(l.detach(), b.detach(), transpose_l);
  if (needs_grad({l, b})) {
    record("triangular_solve", {l, b}, x, [l = l.detach(), x = x.detach(), transpose_l](const Tensor& gx) {
      // L X = B: gB = L^-T gX, gL = -tril(gB X^T).  L^T X = B: gB = L^-1 gX, gL = -tril(X gB^T).
      Tensor gb = solve_lower(l, gx, !transpose_l);
      Tensor outer = transpose_l ? matmul(x, transpose(gb)) : matmul(gb, transpose(x));
      Tensor gl = neg(mul(outer, lower_mask(l.size(0), l.dtype(), l.device())));
      return std::vector<Tensor>{gl, gb};
    });
  }
  return x;
}

}  // namespace intl
