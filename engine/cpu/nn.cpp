// CPU kernels for BatchNorm1d, softmax cross-entropy and the optimizer steps.
#include <cmath>

#include "engine/cpu/dispatch.h"
#include "engine/cpu/kernels.h"
#include "engine/error.h"

namespace intl::cpu {
namespace {
template <class T> T* ptr(const Tensor& t) { return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr; }
}  // namespace

void batchnorm_forward_train(const BatchNormArgs& a, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd,
                             const Tensor& running_mean, const Tensor& running_var) {
  dispatch_float(x.dtype(), "batchnorm forward", [&](auto z) {
    using T = decltype(z);
    const T *px = ptr<T>(x), *pg = ptr<T>(gamma), *pb = ptr<T>(beta);
    T *py = ptr<T>(y), *pm = ptr<T>(save_mean), *ps = ptr<T>(save_invstd);
    T *rm = ptr<T>(running_mean), *rv = ptr<T>(running_var);
    const int64_t R = a.rows, F = a.features, S = a.spatial, count = R * S;
#pragma omp parallel for if (count * F > (1 << 15))
    for (int64_t f = 0; f < F; ++f) {
      double s = 0;
      for (int64_t r = 0; r < R; ++r)
        for (int64_t k = 0; k < S; ++k) s += px[(r * F + f) * S + k];
      const double mean = s / double(count);
      double v = 0;
      for (int64_t r = 0; r < R; ++r)
        for (int64_t k = 0; k < S; ++k) {
          const double d = px[(r * F + f) * S + k] - mean;
          v += d * d;
        }
      const double var = v / double(count);
      const double invstd = 1.0 / std::sqrt(var + a.eps);
      pm[f] = T(mean);
      ps[f] = T(invstd);
      const double g = pg ? double(pg[f]) : 1.0, b = pb ? double(pb[f]) : 0.0;
      for (int64_t r = 0; r < R; ++r)
        for (int64_t k = 0; k < S; ++k) {
          const int64_t i = (r * F + f) * S + k;
          py[i] = T((px[i] - mean) * invstd * g + b);
        }
      if (rm) rm[f] = T((1 - a.momentum) * rm[f] + a.momentum * mean);
      if (rv) rv[f] = T((1 - a.momentum) * rv[f] + a.momentum * (count > 1 ? v / double(count - 1) : var));
    }
  });
}

// With xhat = (x - mean) * invstd over the N = rows * spatial values of a feature: dbeta = sum dy,
// dgamma = sum dy xhat, dx = gamma * invstd / N * (N dy - dbeta - xhat dgamma).
void batchnorm_backward_train(const BatchNormArgs& a, const Tensor& x, const Tensor& gamma,
                              const Tensor& save_mean, const Tensor& save_invstd, const Tensor& dy,
                              const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta) {
  dispatch_float(x.dtype(), "batchnorm backward", [&](auto z) {
    using T = decltype(z);
    const T *px = ptr<T>(x), *pg = ptr<T>(gamma), *pm = ptr<T>(save_mean), *ps = ptr<T>(save_invstd);
    const T* pdy = ptr<T>(dy);
    T *pdx = ptr<T>(dx), *pdg = ptr<T>(dgamma), *pdb = ptr<T>(dbeta);
    const int64_t R = a.rows, F = a.features, S = a.spatial, count = R * S;
#pragma omp parallel for if (count * F > (1 << 15))
    for (int64_t f = 0; f < F; ++f) {
      const double mean = pm[f], invstd = ps[f];
      double sdy = 0, sdyx = 0;
      for (int64_t r = 0; r < R; ++r)
        for (int64_t k = 0; k < S; ++k) {
          const int64_t i = (r * F + f) * S + k;
          sdy += pdy[i];
          sdyx += pdy[i] * (px[i] - mean) * invstd;
        }
      if (pdg) pdg[f] = T(sdyx);
      if (pdb) pdb[f] = T(sdy);
      if (pdx) {
        const double k0 = (pg ? double(pg[f]) : 1.0) * invstd / double(count);
        for (int64_t r = 0; r < R; ++r)
          for (int64_t k = 0; k < S; ++k) {
            const int64_t i = (r * F + f) * S + k;
            const double xhat = (px[i] - mean) * invstd;
            pdx[i] = T(k0 * (double(count) * pdy[i] - sdy - xhat * sdyx));
          }
      }
    }
  });
}

void softmax_xent(const Tensor& logits, const Tensor& labels, const Tensor& loss, const Tensor& dlogits) {
  const int64_t R = logits.size(0), C = logits.size(1);
  const int64_t* lab = labels.data<int64_t>();
  dispatch_float(logits.dtype(), "softmax_xent", [&](auto z) {
    using T = decltype(z);
    const T* pl = ptr<T>(logits);
    T *pout = ptr<T>(loss), *pd = ptr<T>(dlogits);
#pragma omp parallel for if (R * C > (1 << 15))
    for (int64_t r = 0; r < R; ++r) {
      const T* row = pl + r * C;
      const int64_t y = lab[r];
      double mx = row[0];
      for (int64_t c = 1; c < C; ++c) mx = row[c] > mx ? row[c] : mx;
      double s = 0;
      for (int64_t c = 0; c < C; ++c) s += std::exp(row[c] - mx);
      const double lse = mx + std::log(s);
      pout[r] = (y >= 0 && y < C) ? T(lse - row[y]) : T(NAN);
      if (pd)
        for (int64_t c = 0; c < C; ++c) pd[r * C + c] = T(std::exp(row[c] - lse) - (c == y ? 1.0 : 0.0));
    }
  });
}

// PyTorch's SGD, parameter by parameter: g += wd * p; buf = momentum * buf + g (buf = g on the first step);
// g = nesterov ? g + momentum * buf : buf; p -= lr * g.
void sgd_step(const SgdArgs& args, const std::vector<SgdParam>& params) {
  for (const SgdParam& sp : params) {
    const int64_t n = sp.param.numel();
    dispatch_float(sp.param.dtype(), "optimizer step", [&](auto z) {
      using T = decltype(z);
      T *p = ptr<T>(sp.param), *buf = ptr<T>(sp.momentum);
      const T* g = ptr<T>(sp.grad);
      const T tlr = T(args.lr), tm = T(args.momentum), twd = T(sp.weight_decay);
      const bool first = args.first_step, nesterov = args.nesterov;
#pragma omp parallel for simd if (n > (1 << 16))
      for (int64_t i = 0; i < n; ++i) {
        T d = g[i] + twd * p[i];
        if (buf) {
          buf[i] = first ? d : tm * buf[i] + d;
          d = nesterov ? d + tm * buf[i] : buf[i];
        }
        p[i] -= tlr * d;
      }
    });
  }
}

// PyTorch's Adam (decoupled = AdamW): bias-corrected moments; weight decay added to the gradient (Adam) or
// applied as p *= 1 - lr * wd (AdamW).
void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq, double lr,
               double beta1, double beta2, double eps, double weight_decay, bool decoupled, int64_t step) {
  const int64_t n = param.numel();
  const double bc1 = 1 - std::pow(beta1, double(step)), bc2 = 1 - std::pow(beta2, double(step));
  const double step_size = lr / bc1, sqrt_bc2 = std::sqrt(bc2);
  dispatch_float(param.dtype(), "optimizer step", [&](auto z) {
    using T = decltype(z);
    T *p = ptr<T>(param), *m = ptr<T>(exp_avg), *v = ptr<T>(exp_avg_sq);
    const T* g = ptr<T>(grad);
#pragma omp parallel for simd if (n > (1 << 16))
    for (int64_t i = 0; i < n; ++i) {
      T d = g[i];
      if (decoupled) p[i] *= T(1 - lr * weight_decay);
      else d += T(weight_decay) * p[i];
      m[i] = T(beta1) * m[i] + T(1 - beta1) * d;
      v[i] = T(beta2) * v[i] + T(1 - beta2) * d * d;
      p[i] -= T(step_size) * m[i] / (std::sqrt(v[i]) / T(sqrt_bc2) + T(eps));
    }
  });
}

}  // namespace intl::cpu
