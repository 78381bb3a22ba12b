// Forward and backward of the spectral INTL loss. Notation per view: Zc (m x d) row-centred, G = Zc Zc^T,
// S = G / (d - 1), t = tr S, Sn = S / t = U diag(x) U^T, W = U diag(f_T(x)) U^T / sqrt(t), Zhat = W Zc.
// Then v_i = |zhat_i|^2 / (d - 1) = (U diag(phi(x)) U^T)_ii with phi(x) = x f_T(x)^2 (independent of t), and
// the cross products c_i = zhat1_i . zhat2_i = (W1 C W2)_ii with C = Zc1 Zc2^T.
//
// Cost (m = 256, d = 2048): the Gram products G1, G2 and C forward (three m x m x d, in two calls) and one
// (2m x 2m) x (2m x d) product backward, two eigensolves, and sixteen m x m products. Both views' centred rows
// live in one (2m, d) buffer, so neither direction copies an m x d operand; the m x m tables of divided
// differences are filled in one pass on the host. The gradient is computed when backward() asks for it. On a
// GPU the forward reads back three things (both traces at once, both views' eigenvalues at once, and the
// eigensolver's status) and sends the tables in one copy; the backward reads back nothing.
#include "losses/intl_spectral.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "losses/whitening.h"

namespace intl {
namespace {

constexpr double kNormEps = 1e-12;  // l2_normalize_rows' eps, which norm_mse uses

// f_T at every eigenvalue, and the matrices of divided differences of f_T and of phi(x) = x f_T(x)^2:
// F_ij = (f(x_i) - f(x_j)) / (x_i - x_j) (f'(x_i) on ties), computed by the product rule on the Newton
// recurrence, so no division and no cancellation near ties.
struct SpectralFactors {
  Tensor f;        // (m,)
  Tensor dd_f;     // (m, m)
  Tensor dd_phi;   // (m, m)
};

// The recurrence, in double whatever the tensors' type: f_{k+1} = 1.5 f_k - 0.5 x f_k^3 and, for the divided
// difference, delta[x f^3](a, b) = f(a)^3 + b (f(a)^2 + f(a) f(b) + f(b)^2) delta f; at the end
// delta[x f^2](a, b) = f(a)^2 + b (f(a) + f(b)) delta f. Row i of both tables is independent of the others.
template <class Real>
void fill_factors(const std::vector<double>& x, int T, Real* f_out, Real* dd_f, Real* dd_phi) {
  const int64_t m = int64_t(x.size());
  std::vector<double> F(size_t(T + 1) * size_t(m), 1.0);  // F[k m + i] = f_k(x_i)
  for (int k = 0; k < T; ++k)
    for (int64_t i = 0; i < m; ++i) {
      const double fk = F[size_t(k * m + i)];
      F[size_t((k + 1) * m + i)] = 1.5 * fk - 0.5 * x[size_t(i)] * fk * fk * fk;
    }
  const double* fT = F.data() + size_t(T) * size_t(m);
  for (int64_t i = 0; i < m; ++i) f_out[i] = Real(fT[i]);
#pragma omp parallel if (m >= 64)
  {
    std::vector<double> dd(static_cast<size_t>(m));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < m; ++i) {
      std::fill(dd.begin(), dd.end(), 0.0);
      for (int k = 0; k < T; ++k) {
        const double* fb = F.data() + size_t(k) * size_t(m);
        const double fa = fb[i], fa2 = fa * fa, fa3 = fa2 * fa;
        for (int64_t j = 0; j < m; ++j)
          dd[size_t(j)] = 1.5 * dd[size_t(j)] -
                          0.5 * (fa3 + x[size_t(j)] * (fa2 + fa * fb[j] + fb[j] * fb[j]) * dd[size_t(j)]);
      }
      const double fa = fT[i];
      for (int64_t j = 0; j < m; ++j) {
        dd_f[i * m + j] = Real(dd[size_t(j)]);
        dd_phi[i * m + j] = Real(fa * fa + x[size_t(j)] * (fa + fT[j]) * dd[size_t(j)]);
      }
    }
  }
}

// Both views' tables from their eigenvalues (2, m): computed on the host from one read-back, and moved to the
// values' device in one copy of a packed (2, m + 2 m^2) buffer [f | dd_f | dd_phi] per view.
std::array<SpectralFactors, 2> spectral_factors(const Tensor& values, int T) {
  const int64_t m = values.size(1), per_view = m + 2 * m * m;
  const std::vector<double> all = values.to_vector();
  Tensor packed = Tensor::empty({2, per_view}, values.dtype());
  for (int k = 0; k < 2; ++k) {
    const std::vector<double> x(all.begin() + k * m, all.begin() + (k + 1) * m);
    if (values.dtype() == DType::f32) {
      float* p = packed.data<float>() + k * per_view;
      fill_factors(x, T, p, p + m, p + m + m * m);
    } else {
      double* p = packed.data<double>() + k * per_view;
      fill_factors(x, T, p, p + m, p + m + m * m);
    }
  }
  if (values.device() != Device::cpu) packed = packed.to(values.device());
  std::array<SpectralFactors, 2> sf;
  for (int k = 0; k < 2; ++k)
    sf[size_t(k)] = {make_view(packed, {m}, {1}, k * per_view), make_view(packed, {m, m}, {m, 1}, k * per_view + m),
                     make_view(packed, {m, m}, {m, 1}, k * per_view + m + m * m)};
  return sf;
}

struct View {
  Tensor zc;     // (m, d), rows [k m, (k + 1) m) of the stacked buffer
  Tensor u;      // (m, m) eigenvectors of Sn
  Tensor x;      // (m,) eigenvalues of Sn
  double t = 0;  // trace of S
  SpectralFactors sf;
  Tensor w;      // (m, m)
  Tensor v;      // (m,) row variances of Zhat
};

struct Forward {
  Tensor zc;  // (2m, d): [Zc1; Zc2]
  Tensor c;   // (m, m) C = Zc1 Zc2^T, a row-strided view
  View view[2];
};

// Both views' eigendecompositions in one batched call (the CPU backend solves the two on separate threads).
// The Gram products come from the stacked buffer in two calls, [G1 | C] = Zc1 [Zc1; Zc2]^T and G2 = Zc2 Zc2^T,
// which measured 20-30% faster here than three m x m x d products.
Forward views_forward(const Tensor& z1, const Tensor& z2, int T) {
  Forward fw;
  const Tensor* z[2] = {&z1, &z2};
  const int64_t m = z1.size(0), d = z1.size(1);
  const Backend& be = backend(z1.device());
  fw.zc = Tensor::empty({2 * m, d}, z1.dtype(), z1.device());
  for (int k = 0; k < 2; ++k) {
    fw.view[k].zc = slice(fw.zc, 0, k * m, (k + 1) * m);
    be.binary(BinaryOp::sub, *z[k], expand(mean(*z[k], {1}, true), {m, d}), fw.view[k].zc);
  }
  Tensor top = Tensor::empty({m, 2 * m}, z1.dtype(), z1.device());  // [G1 | C]
  Tensor sn = Tensor::empty({2, m, m}, z1.dtype(), z1.device());
  matmul_out(fw.view[0].zc, transpose(fw.zc), top);
  matmul_out(fw.view[1].zc, transpose(fw.view[1].zc), make_view(sn, {m, m}, {m, 1}, m * m));
  be.copy(make_view(top, {m, m}, {2 * m, 1}, 0), make_view(sn, {m, m}, {m, 1}, 0));
  fw.c = make_view(top, {m, m}, {2 * m, 1}, m);
  Tensor g[2] = {make_view(sn, {m, m}, {m, 1}, 0), make_view(sn, {m, m}, {m, 1}, m * m)};
  const std::vector<double> trace_g =  // both traces in one read-back
      concat({reshape(sum(diagonal(g[0])), {1}), reshape(sum(diagonal(g[1])), {1})}, 0).to_vector();
  for (int k = 0; k < 2; ++k) {
    View& v = fw.view[k];
    v.t = trace_g[size_t(k)] / double(d - 1);  // tr S, S = G / (d - 1)
    INTL_CHECK(std::isfinite(v.t) && v.t > 0, "IterNorm: the embedding's covariance has trace " +
                                                  std::to_string(v.t) + " (all rows constant, or non-finite values)");
    be.unary(UnaryOp::scale, g[k], g[k], 1.0 / trace_g[size_t(k)]);  // Sn = S / tr S = G / tr G, in place
  }
  Tensor values = Tensor::empty({2, m}, z1.dtype(), z1.device());
  Tensor vectors = Tensor::empty({2, m, m}, z1.dtype(), z1.device());
  const int info = be.eigh(sn, values, vectors);
  if (info != 0) throw Error("IterNorm: the eigensolver failed (info " + std::to_string(info) + ")");
  const std::array<SpectralFactors, 2> sf = spectral_factors(values, T);
  for (int k = 0; k < 2; ++k) {
    View& v = fw.view[k];
    v.u = make_view(vectors, {m, m}, {m, 1}, k * m * m);
    v.x = make_view(values, {m}, {1}, k * m);
    v.sf = sf[size_t(k)];
    v.w = Tensor::empty({m, m}, z1.dtype(), z1.device());
    matmul_out(mul(v.u, reshape(v.sf.f, {1, m})), transpose(v.u), v.w, 1.0 / std::sqrt(v.t));
    Tensor phi = mul(v.x, square(v.sf.f));
    v.v = sum(mul(square(v.u), reshape(phi, {1, m})), {1});
  }
  return fw;
}

// Writes scale * dL/dG (m x m, symmetric) into `out`, given the gradients of the view's W (gw) and of its row
// variances (gv).
void view_backward_gram(const View& V, const Tensor& gw, const Tensor& gv, int64_t d, double scale,
                        const Tensor& out) {
  const int64_t m = V.u.size(0);
  const Tensor ut = transpose(V.u);
  Tensor gw_sym = mul(add(gw, transpose(gw)), 0.5);
  Tensor a = matmul(matmul(ut, gw_sym), V.u);                      // U^T sym(gW) U
  Tensor b = matmul(mul(ut, reshape(gv, {1, m})), V.u);           // U^T diag(gv) U
  Tensor inner = add(mul(V.sf.dd_f, mul(a, 1.0 / std::sqrt(V.t))), mul(V.sf.dd_phi, b));
  // W = f_T(Sn) t^{-1/2} with Sn = S / t and t = tr S. Through the scale, dL/dt = -<gW, W> / (2t); through
  // Sn, dL/dS = gSn / t - <gSn, Sn> / t^2 I, where <gSn, Sn> = sum_i inner_ii x_i in the eigenbasis; and
  // G = (d - 1) S. So dL/dS = (gSn + t g_t I) / t with t g_t = -<gSn, Sn> - <gW, W> / 2, and as U is
  // orthogonal, out = scale dL/dG = (s / t) U (inner + t g_t I) U^T with s = scale / (d - 1). The scalars
  // stay on the device (no read-back, so no sync on a GPU).
  Tensor t_g_t = neg(add(sum(mul(diagonal(inner), V.x)), mul(sum(mul(gw, V.w)), 0.5)));
  inner = add(inner, mul(eye(m, inner.dtype(), inner.device()), t_g_t));
  const double s = scale / double(d - 1);
  matmul_out(matmul(V.u, inner), ut, out, s / V.t);
}

}  // namespace

Tensor intl_loss_spectral(const Tensor& z1, const Tensor& z2, int T, double beta) {
  const LossPrecision fp32;
  INTL_CHECK(z1.dim() == 2 && z1.shape() == z2.shape(), "INTL loss: views must have the same (m, d) shape, got " +
                                                            shape_str(z1.shape()) + " and " + shape_str(z2.shape()));
  INTL_CHECK(z1.dtype() == z2.dtype() && z1.device() == z2.device(), "INTL loss: views must share dtype and device");
  INTL_CHECK(T >= 0, "INTL loss: T must be >= 0");
  const int64_t m = z1.size(0), d = z1.size(1);
  // The forward keeps what the backward needs; the gradient is computed only when backward() asks for it.
  struct Saved {
    Forward fw;
    Tensor mw, cos, denom, n1sq, n2sq;
  };
  auto sv = std::make_shared<Saved>();
  Tensor loss;
  {
    NoGradGuard no_grad;
    sv->fw = views_forward(z1.detach(), z2.detach(), T);
    const View &a = sv->fw.view[0], &b = sv->fw.view[1];
    sv->mw = matmul(a.w, sv->fw.c);                                 // W1 C
    Tensor c = sum(mul(sv->mw, b.w), {1});                          // c_i = (W1 C W2)_ii
    // |zhat_i|^2 + eps^2, the squared norms l2_normalize_rows divides by in the Newton form's norm_mse, so that
    // a zero row (an embedding constant over its features) has the same finite value and gradient in both.
    sv->n1sq = add(mul(a.v, double(d - 1)), kNormEps * kNormEps);
    sv->n2sq = add(mul(b.v, double(d - 1)), kNormEps * kNormEps);
    sv->denom = sqrt(mul(sv->n1sq, sv->n2sq));
    sv->cos = div(c, sv->denom);
    Tensor trace_terms = add(sum(square(add(a.v, -1.0))), sum(square(add(b.v, -1.0))));
    loss = add(add(mul(sum(sv->cos), -2.0 / double(m)), 2.0), mul(trace_terms, beta));
  }
  if (!needs_grad({z1, z2})) return loss;
  record("intl_loss_spectral", {z1, z2}, loss, [sv, m, d, beta](const Tensor& g) {
    NoGradGuard no_grad;
    const View &a = sv->fw.view[0], &b = sv->fw.view[1];
    const Tensor &cos = sv->cos, &mw = sv->mw;
    // Gradients of the scalar terms with respect to c, v1, v2. cos = c / (n1 n2) with n^2 = (d-1) v + eps^2,
    // so d cos / d v1 = -cos (d - 1) / (2 n1^2).
    const double gcos = -2.0 / double(m);
    Tensor gc = div(Tensor::full({m}, gcos, cos.dtype(), cos.device()), sv->denom);
    const double gn = -0.5 * gcos * double(d - 1);
    Tensor gv1 = add(mul(div(cos, sv->n1sq), gn), mul(add(a.v, -1.0), 2.0 * beta));
    Tensor gv2 = add(mul(div(cos, sv->n2sq), gn), mul(add(b.v, -1.0), 2.0 * beta));
    // c_i = sum_k (W1 C)_ik W2_ik: gW2 = diag(gc) W1 C; gW1 = diag(gc) W2 C^T; gC = W1 diag(gc) W2.
    Tensor gc_col = reshape(gc, {m, 1});
    Tensor gc_w2 = mul(b.w, gc_col);
    Tensor gw1 = matmul(gc_w2, transpose(sv->fw.c));
    Tensor gw2 = mul(mw, gc_col);
    // G = Zc Zc^T, C = Zc1 Zc2^T: gZc1 = 2 gG1 Zc1 + gC Zc2 and gZc2 = gC^T Zc1 + 2 gG2 Zc2. With the stacked
    // Zc = [Zc1; Zc2] that is one product, gZc = [[2 gG1, gC], [gC^T, 2 gG2]] Zc, its (2m, 2m) factor
    // assembled block by block in place. The row centring's own backward (subtracting each row's mean) is
    // the identity here: every row of the product is a combination of centred rows, so its mean is zero.
    Tensor g_all = Tensor::empty({2 * m, 2 * m}, cos.dtype(), cos.device());
    auto block = [&](int64_t i, int64_t j) { return make_view(g_all, {m, m}, {2 * m, 1}, (i * 2 * m + j) * m); };
    view_backward_gram(a, gw1, gv1, d, 2.0, block(0, 0));
    view_backward_gram(b, gw2, gv2, d, 2.0, block(1, 1));
    matmul_out(a.w, gc_w2, block(0, 1));             // gC = W1 diag(gc) W2
    matmul_out(b.w, mul(a.w, gc_col), block(1, 0));  // gC^T = W2 diag(gc) W1
    // The incoming gradient scales the product; read on the host it costs nothing, on a device a sync.
    Tensor gz = Tensor::empty({2 * m, d}, cos.dtype(), cos.device());
    const bool host = g.device() == Device::cpu;
    matmul_out(g_all, sv->fw.zc, gz, host ? g.item() : 1.0);
    if (!host) gz = mul(gz, g);
    return std::vector<Tensor>{slice(gz, 0, 0, m), slice(gz, 0, m, 2 * m)};
  });
  return loss;
}

}  // namespace intl
