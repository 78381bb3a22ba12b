// Forward and backward of the toy encoder, one x_forward / x_backward pair per layer kind. Backward functions
// add into the parameter gradients, as the tape engine does.
#include "studies/toy2d_net.h"

#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>

#include "engine/error.h"

namespace intl::toy2d {

void Activations::resize(int rows) {
  m = rows;
  x.assign(size_t(rows) * kIn, 0.0);
  xhat1.assign(size_t(rows) * kHidden, 0.0);
  h1.assign(size_t(rows) * kHidden, 0.0);
  xhat2.assign(size_t(rows) * kHidden, 0.0);
  h2.assign(size_t(rows) * kHidden, 0.0);
  z.assign(size_t(rows) * kOut, 0.0);
}

void BackwardScratch::resize(int rows) {
  for (auto* v : {&dh2, &da2, &dh1, &da1}) v->assign(size_t(rows) * kHidden, 0.0);
}

namespace {

// Sizes are template parameters and pointers do not alias (INTL_RESTRICT), so the compiler unrolls and
// vectorises the fixed-size inner loops; this is what keeps a whole training step near 20 microseconds.
#define INTL_RESTRICT __restrict__
#define INTL_SIMD _Pragma("omp simd")

// out (m, Out) = in (m, In) W^T + b, W (Out, In). The inner loop runs over the outputs of one row, reading
// W^T, so it vectorises without reordering any sum.
template <int In, int Out>
void linear_forward(double* INTL_RESTRICT out, const double* INTL_RESTRICT in, const double* INTL_RESTRICT w,
                    const double* INTL_RESTRICT b, int m) {
  double wt[In * Out];
  for (int o = 0; o < Out; ++o)
    for (int k = 0; k < In; ++k) wt[k * Out + o] = w[o * In + k];
  for (int i = 0; i < m; ++i) {
    double acc[Out];
    for (int o = 0; o < Out; ++o) acc[o] = b[o];
    for (int k = 0; k < In; ++k) {
      const double x = in[i * In + k];
      INTL_SIMD
      for (int o = 0; o < Out; ++o) acc[o] += x * wt[k * Out + o];
    }
    for (int o = 0; o < Out; ++o) out[i * Out + o] = acc[o];
  }
}

// dW += dout^T in, db += sum over rows of dout, din = dout W (skipped when din is null). Each loop keeps one
// row of W's gradient (or of din) in a local accumulator and runs its inner loop over contiguous memory.
template <int In, int Out>
void linear_backward(double* INTL_RESTRICT din, double* INTL_RESTRICT dw, double* INTL_RESTRICT db,
                     const double* INTL_RESTRICT dout, const double* INTL_RESTRICT in, const double* INTL_RESTRICT w,
                     int m) {
  for (int o = 0; o < Out; ++o) {
    double acc[In] = {}, acc_b = 0;
    for (int i = 0; i < m; ++i) {
      const double g = dout[i * Out + o];
      acc_b += g;
      INTL_SIMD
      for (int k = 0; k < In; ++k) acc[k] += g * in[i * In + k];
    }
    for (int k = 0; k < In; ++k) dw[o * In + k] += acc[k];
    db[o] += acc_b;
  }
  if (!din) return;
  for (int i = 0; i < m; ++i) {
    double acc[In] = {};
    for (int o = 0; o < Out; ++o) {
      const double g = dout[i * Out + o];
      INTL_SIMD
      for (int k = 0; k < In; ++k) acc[k] += g * w[o * In + k];
    }
    for (int k = 0; k < In; ++k) din[i * In + k] = acc[k];
  }
}

// Training-mode BatchNorm over the rows, in place on `a` (m, F): xhat = (a - mean) invstd with the biased
// variance, then h = relu(gamma xhat + beta). Keeps xhat and invstd for the backward.
void batchnorm_relu_forward(double* xhat, double* INTL_RESTRICT h, double* INTL_RESTRICT invstd, const double* a,
                            const double* INTL_RESTRICT gamma, const double* INTL_RESTRICT beta, int m) {
  constexpr int F = kHidden;
  double mean[F] = {}, var[F] = {};
  for (int i = 0; i < m; ++i)
    INTL_SIMD
    for (int f = 0; f < F; ++f) mean[f] += a[i * F + f];
  for (int f = 0; f < F; ++f) mean[f] /= m;
  for (int i = 0; i < m; ++i)
    INTL_SIMD
    for (int f = 0; f < F; ++f) {
      const double d = a[i * F + f] - mean[f];
      var[f] += d * d;
    }
  for (int f = 0; f < F; ++f) invstd[f] = 1.0 / std::sqrt(var[f] / m + 1e-5);
  for (int i = 0; i < m; ++i)
    INTL_SIMD
    for (int f = 0; f < F; ++f) {
      const double xh = (a[i * F + f] - mean[f]) * invstd[f];
      xhat[i * F + f] = xh;
      const double y = gamma[f] * xh + beta[f];
      h[i * F + f] = y > 0 ? y : 0.0;
    }
}

// Backward of relu(gamma xhat + beta): dy = dh where h > 0; dbeta += sum dy, dgamma += sum dy xhat,
// da = gamma invstd / m (m dy - sum dy - xhat sum dy xhat).
void batchnorm_relu_backward(double* INTL_RESTRICT da, double* INTL_RESTRICT dgamma, double* INTL_RESTRICT dbeta,
                             const double* INTL_RESTRICT dh, const double* INTL_RESTRICT h,
                             const double* INTL_RESTRICT xhat, const double* INTL_RESTRICT gamma,
                             const double* INTL_RESTRICT invstd, int m) {
  constexpr int F = kHidden;
  double sdy[F] = {}, sdyx[F] = {};
  for (int i = 0; i < m; ++i)
    INTL_SIMD
    for (int f = 0; f < F; ++f) {
      const double dy = h[i * F + f] > 0 ? dh[i * F + f] : 0.0;
      sdy[f] += dy;
      sdyx[f] += dy * xhat[i * F + f];
    }
  double k[F];
  for (int f = 0; f < F; ++f) {
    dbeta[f] += sdy[f];
    dgamma[f] += sdyx[f];
    k[f] = gamma[f] * invstd[f] / m;
  }
  for (int i = 0; i < m; ++i)
    INTL_SIMD
    for (int f = 0; f < F; ++f) {
      const double dy = h[i * F + f] > 0 ? dh[i * F + f] : 0.0;
      da[i * F + f] = k[f] * (m * dy - sdy[f] - xhat[i * F + f] * sdyx[f]);
    }
}

}  // namespace

void net_forward(const Params& p, Activations& act) {
  const int m = act.m;
  // The BN input is written into xhat and normalised in place.
  linear_forward<kIn, kHidden>(act.xhat1.data(), act.x.data(), p.w1, p.b1, m);
  batchnorm_relu_forward(act.xhat1.data(), act.h1.data(), act.invstd1, act.xhat1.data(), p.g1, p.be1, m);
  linear_forward<kHidden, kHidden>(act.xhat2.data(), act.h1.data(), p.w2, p.b2, m);
  batchnorm_relu_forward(act.xhat2.data(), act.h2.data(), act.invstd2, act.xhat2.data(), p.g2, p.be2, m);
  linear_forward<kHidden, kOut>(act.z.data(), act.h2.data(), p.w3, p.b3, m);
}

void net_backward(const Params& p, const Activations& act, const double* dz, Params& g, BackwardScratch& s) {
  const int m = act.m;
  linear_backward<kHidden, kOut>(s.dh2.data(), g.w3, g.b3, dz, act.h2.data(), p.w3, m);
  batchnorm_relu_backward(s.da2.data(), g.g2, g.be2, s.dh2.data(), act.h2.data(), act.xhat2.data(), p.g2,
                          act.invstd2, m);
  linear_backward<kHidden, kHidden>(s.dh1.data(), g.w2, g.b2, s.da2.data(), act.h1.data(), p.w2, m);
  batchnorm_relu_backward(s.da1.data(), g.g1, g.be1, s.dh1.data(), act.h1.data(), act.xhat1.data(), p.g1,
                          act.invstd1, m);
  linear_backward<kIn, kHidden>(nullptr, g.w1, g.b1, s.da1.data(), act.x.data(), p.w1, m);
}

namespace {
struct Field {
  const char* name;
  size_t offset, count;
};
#define INTL_TOY2D_FIELD(name, member) \
  Field { name, offsetof(Params, member) / sizeof(double), sizeof(Params::member) / sizeof(double) }
const Field kFields[] = {
    INTL_TOY2D_FIELD("0.weight", w1), INTL_TOY2D_FIELD("0.bias", b1), INTL_TOY2D_FIELD("1.weight", g1),
    INTL_TOY2D_FIELD("1.bias", be1),  INTL_TOY2D_FIELD("3.weight", w2), INTL_TOY2D_FIELD("3.bias", b2),
    INTL_TOY2D_FIELD("4.weight", g2), INTL_TOY2D_FIELD("4.bias", be2), INTL_TOY2D_FIELD("6.weight", w3),
    INTL_TOY2D_FIELD("6.bias", b3)};
#undef INTL_TOY2D_FIELD

const Field& field(const std::string& name) {
  for (const Field& f : kFields)
    if (name == f.name) return f;
  throw Error("toy2d: the engine MLP has a parameter '" + name + "' that the fused network does not know");
}
}  // namespace

Params params_from_named(const std::vector<std::pair<std::string, Tensor>>& named) {
  Params p{};
  for (const auto& [name, t] : named) {
    const Field& f = field(name);
    const std::vector<double> v = t.to_vector();
    check(v.size() == f.count, "toy2d: parameter '" + name + "' has " + std::to_string(v.size()) + " values, expected " +
                                   std::to_string(f.count));
    std::memcpy(slab(p) + f.offset, v.data(), f.count * sizeof(double));
  }
  return p;
}

void params_to_mlp(const Params& params, MLP& mlp) {
  for (auto& [name, t] : mlp.named_parameters()) {
    const Field& f = field(name);
    std::vector<double> v(slab(params) + f.offset, slab(params) + f.offset + f.count);
    t.copy_(Tensor::from_vector(v, t.shape(), DType::f64).to(t.dtype()));
    t.bump_version();
  }
}

}  // namespace intl::toy2d
