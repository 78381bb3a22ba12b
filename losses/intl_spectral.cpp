// Forward and backward of the spectral INTL loss. Notation per view: Zc (m x d) row-centred, G = Zc Zc^T,
// S = G / (d - 1), t = tr S, Sn = S / t = U diag(x) U^T, W = U diag(f_T(x)) U^T / sqrt(t), Zhat = W Zc.
// Then v_i = |zhat_i|^2 / (d - 1) = (U diag(phi(x)) U^T)_ii with phi(x) = x f_T(x)^2 (independent of t), and
// the cross products c_i = zhat1_i . zhat2_i = (W1 C W2)_ii with C = Zc1 Zc2^T.
#include "losses/intl_spectral.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/ops.h"

namespace intl {
namespace {

// f_T at every eigenvalue, and the matrices of divided differences of f_T and of phi(x) = x f_T(x)^2:
// F_ij = (f(x_i) - f(x_j)) / (x_i - x_j) (f'(x_i) on ties), computed by the product rule on the Newton
// recurrence, so no division and no cancellation near ties.
struct SpectralFactors {
  Tensor f;        // (m,)
  Tensor dd_f;     // (m, m)
  Tensor dd_phi;   // (m, m)
};

SpectralFactors spectral_factors(const Tensor& x, int T) {
  const int64_t m = x.size(0);
  Tensor xa = reshape(x, {m, 1}), xb = reshape(x, {1, m});
  Tensor fa = Tensor::ones({m, 1}, x.dtype(), x.device()), fb = Tensor::ones({1, m}, x.dtype(), x.device());
  Tensor dd = Tensor::zeros({m, m}, x.dtype(), x.device());
  for (int k = 0; k < T; ++k) {
    // delta[x f^3](a, b) = f(a)^3 + b (f(a)^2 + f(a) f(b) + f(b)^2) delta f
    Tensor fa2 = square(fa), fb2 = square(fb);
    Tensor sym3 = add(add(fa2, mul(fa, fb)), fb2);
    Tensor dd_xf3 = add(mul(fa2, fa), mul(mul(xb, sym3), dd));
    dd = sub(mul(dd, 1.5), mul(dd_xf3, 0.5));
    fa = sub(mul(fa, 1.5), mul(mul(xa, mul(fa2, fa)), 0.5));
    fb = sub(mul(fb, 1.5), mul(mul(xb, mul(fb2, fb)), 0.5));
  }
  // delta[x f^2](a, b) = f(a)^2 + b (f(a) + f(b)) delta f
  Tensor dd_phi = add(square(fa), mul(mul(xb, add(fa, fb)), dd));
  return {reshape(fa, {m}), dd, dd_phi};
}

struct View {
  Tensor zc;     // (m, d)
  Tensor u;      // (m, m) eigenvectors of Sn
  Tensor x;      // (m,) eigenvalues of Sn
  double t = 0;  // trace of S
  SpectralFactors sf;
  Tensor w;      // (m, m)
  Tensor v;      // (m,) row variances of Zhat
};

// Both views' eigendecompositions in one batched call (the CPU backend solves the two on separate threads).
std::pair<View, View> views_forward(const Tensor& z1, const Tensor& z2, int T) {
  View V[2];
  const Tensor* z[2] = {&z1, &z2};
  const int64_t m = z1.size(0), d = z1.size(1);
  Tensor sn = Tensor::empty({2, m, m}, z1.dtype(), z1.device());
  for (int k = 0; k < 2; ++k) {
    V[k].zc = sub(*z[k], mean(*z[k], {1}, true));
    Tensor s = mul(matmul(V[k].zc, transpose(V[k].zc)), 1.0 / double(d - 1));
    V[k].t = sum(diagonal(s)).item();
    check(std::isfinite(V[k].t) && V[k].t > 0, "IterNorm: the embedding's covariance has trace " +
                                                    std::to_string(V[k].t) +
                                                    " (all rows constant, or non-finite values)");
    backend(s.device()).copy(mul(s, 1.0 / V[k].t), make_view(sn, {m, m}, {m, 1}, k * m * m));
  }
  Tensor values = Tensor::empty({2, m}, z1.dtype(), z1.device());
  Tensor vectors = Tensor::empty({2, m, m}, z1.dtype(), z1.device());
  const int info = backend(z1.device()).eigh(sn, values, vectors);
  if (info != 0) throw Error("IterNorm: the eigensolver failed (info " + std::to_string(info) + ")");
  for (int k = 0; k < 2; ++k) {
    View& v = V[k];
    v.u = make_view(vectors, {m, m}, {m, 1}, k * m * m);
    v.x = make_view(values, {m}, {1}, k * m);
    v.sf = spectral_factors(v.x, T);
    v.w = mul(matmul(mul(v.u, reshape(v.sf.f, {1, m})), transpose(v.u)), 1.0 / std::sqrt(v.t));
    Tensor phi = mul(v.x, square(v.sf.f));
    v.v = sum(mul(square(v.u), reshape(phi, {1, m})), {1});
  }
  return {V[0], V[1]};
}

// Gradient with respect to Zc of the view's inputs to the loss, given the gradients of W (gw) and of the
// row variances (gv); returns gG = dL/dG (m x m, symmetric).
Tensor view_backward_gram(const View& V, const Tensor& gw, const Tensor& gv, int64_t d) {
  const int64_t m = V.u.size(0);
  const Tensor ut = transpose(V.u);
  Tensor gw_sym = mul(add(gw, transpose(gw)), 0.5);
  Tensor a = matmul(matmul(ut, gw_sym), V.u);                      // U^T sym(gW) U
  Tensor b = matmul(mul(ut, reshape(gv, {1, m})), V.u);           // U^T diag(gv) U
  Tensor inner = add(mul(V.sf.dd_f, mul(a, 1.0 / std::sqrt(V.t))), mul(V.sf.dd_phi, b));
  Tensor g_sn = matmul(matmul(V.u, inner), ut);
  // W = f_T(Sn) t^{-1/2} with Sn = S / t and t = tr S. Through the scale, dL/dt = -<gW, W> / (2t); through
  // Sn, dL/dS = gSn / t - <gSn, Sn> / t^2 I, where <gSn, Sn> = sum_i inner_ii x_i in the eigenbasis.
  const double gw_dot_w = sum(mul(gw, V.w)).item();
  const double gsn_dot_sn = sum(mul(diagonal(inner), V.x)).item();
  const double g_t = -gsn_dot_sn / V.t - 0.5 * gw_dot_w / V.t;
  Tensor g_s = add(mul(g_sn, 1.0 / V.t), mul(eye(m, V.u.dtype(), V.u.device()), g_t));
  return mul(g_s, 1.0 / double(d - 1));
}

}  // namespace

Tensor intl_loss_spectral(const Tensor& z1, const Tensor& z2, int T, double beta) {
  check(z1.dim() == 2 && z1.shape() == z2.shape(), "INTL loss: views must have the same (m, d) shape, got " +
                                                       shape_str(z1.shape()) + " and " + shape_str(z2.shape()));
  check(T >= 0, "INTL loss: T must be >= 0");
  const int64_t m = z1.size(0), d = z1.size(1);
  const bool want_grad = needs_grad({z1, z2});
  Tensor loss, gz1, gz2;
  {
    NoGradGuard no_grad;
    auto [a, b] = views_forward(z1.detach(), z2.detach(), T);
    Tensor c_mat = matmul(a.zc, transpose(b.zc));                  // C = Zc1 Zc2^T
    Tensor mw = matmul(a.w, c_mat);                                 // W1 C
    Tensor c = sum(mul(mw, b.w), {1});                              // c_i = (W1 C W2)_ii
    Tensor n1 = sqrt(mul(a.v, double(d - 1))), n2 = sqrt(mul(b.v, double(d - 1)));
    Tensor denom = add(mul(n1, n2), 1e-24);
    Tensor cos = div(c, denom);
    Tensor trace_terms = add(sum(square(add(a.v, -1.0))), sum(square(add(b.v, -1.0))));
    loss = add(add(mul(sum(cos), -2.0 / double(m)), 2.0), mul(trace_terms, beta));
    if (want_grad) {
      // Gradients of the scalar terms with respect to c, v1, v2. cos = c / (n1 n2) with n = sqrt((d-1) v),
      // so d cos / d v1 = -cos / (2 v1).
      const double gcos = -2.0 / double(m);
      Tensor gc = div(Tensor::full({m}, gcos, z1.dtype(), z1.device()), denom);
      Tensor gv1 = add(mul(div(cos, a.v), -0.5 * gcos), mul(add(a.v, -1.0), 2.0 * beta));
      Tensor gv2 = add(mul(div(cos, b.v), -0.5 * gcos), mul(add(b.v, -1.0), 2.0 * beta));
      // c_i = sum_k (W1 C)_ik W2_ik: gW2 = diag(gc) W1 C; gW1 = diag(gc) W2 C^T; gC = W1 diag(gc) W2.
      Tensor gc_col = reshape(gc, {m, 1});
      Tensor gc_w2 = mul(b.w, gc_col);
      Tensor gw1 = matmul(gc_w2, transpose(c_mat));
      Tensor gw2 = mul(mw, gc_col);
      Tensor g_cmat = matmul(a.w, gc_w2);
      Tensor gg1 = view_backward_gram(a, gw1, gv1, d), gg2 = view_backward_gram(b, gw2, gv2, d);
      // G = Zc Zc^T, C = Zc1 Zc2^T: gZc1 = 2 gG1 Zc1 + gC Zc2 and gZc2 = gC^T Zc1 + 2 gG2 Zc2, as one product
      // [[2 gG1, gC], [gC^T, 2 gG2]] @ [Zc1; Zc2]; then the row centring: gZ = gZc - rowmean(gZc).
      Tensor top = concat({mul(gg1, 2.0), g_cmat}, 1);
      Tensor bottom = concat({transpose(g_cmat), mul(gg2, 2.0)}, 1);
      Tensor gzc = matmul(concat({top, bottom}, 0), concat({a.zc, b.zc}, 0));  // (2m, d)
      Tensor gz = sub(gzc, mean(gzc, {1}, true));
      gz1 = slice(gz, 0, 0, m);
      gz2 = slice(gz, 0, m, 2 * m);
    }
  }
  if (want_grad)
    record("intl_loss_spectral", {z1, z2}, loss, [gz1, gz2](const Tensor& g) {
      return std::vector<Tensor>{mul(gz1, g), mul(gz2, g)};
    });
  return loss;
}

}  // namespace intl
