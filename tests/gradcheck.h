// Finite-difference gradient checking in float64: central differences (eps 1e-6) of a scalar function of
// several inputs, compared with the tape's gradients (atol 1e-5, rtol 1e-3). A non-scalar output is reduced
// with fixed random weights so every output element matters.
#pragma once
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace intl::testing {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct GradcheckResult {
  bool ok = true;
  std::string message;
};

inline Tensor scalarize(const Tensor& y) {
  if (y.numel() == 1) return reshape(y, {});
  Tensor w = Tensor::randn(y.shape(), 1234, 99, y.dtype());
  return sum(mul(y, w));
}

inline GradcheckResult gradcheck(const Fn& f, std::vector<Tensor> inputs, double eps = 1e-6, double atol = 1e-5,
                                 double rtol = 1e-3) {
  for (Tensor& t : inputs) {
    t = t.to(DType::f64);
    t.requires_grad_(true);
  }
  Tensor y = scalarize(f(inputs));
  y.backward();
  GradcheckResult res;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor g = inputs[k].grad();
    const std::vector<double> analytic = g.defined() ? g.to_vector() : std::vector<double>(size_t(inputs[k].numel()), 0.0);
    const int64_t n = inputs[k].numel();
    double* p = inputs[k].data<double>();
    for (int64_t i = 0; i < n; ++i) {
      const double saved = p[i];
      double plus, minus;
      {
        NoGradGuard ng;
        p[i] = saved + eps;
        plus = scalarize(f(inputs)).item();
        p[i] = saved - eps;
        minus = scalarize(f(inputs)).item();
        p[i] = saved;
      }
      const double numeric = (plus - minus) / (2 * eps);
      const double a = analytic[size_t(i)];
      if (std::abs(a - numeric) > atol + rtol * std::abs(numeric)) {
        res.ok = false;
        res.message = "input " + std::to_string(k) + " element " + std::to_string(i) + ": analytic " +
                      std::to_string(a) + " numeric " + std::to_string(numeric);
        return res;
      }
    }
  }
  return res;
}

}  // namespace intl::testing
