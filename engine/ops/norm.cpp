// Normalisation ops: row-wise L2 normalisation and BatchNorm over the rows of a 2-D input.
#include "engine/ops/common.h"

namespace intl {
using namespace ops;

Tensor l2_normalize_rows(const Tensor& x, double eps) {
  INTL_CHECK(x.dim() == 2, "l2_normalize_rows needs a 2-D input, got " + shape_str(x.shape()));
  Tensor norm = sqrt(add(sum(square(x), {1}, true), eps * eps));
  return div(x, norm);
}

Tensor batch_norm_1d(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                     const Tensor& running_var, bool training, double momentum, double eps) {
  INTL_CHECK(x.dim() == 2, "batch_norm_1d needs (rows, features), got " + shape_str(x.shape()));
  const int64_t rows = x.size(0), features = x.size(1);
  for (const Tensor* p : {&gamma, &beta, &running_mean, &running_var})
    if (p->defined()) {
      check_same("batch_norm_1d", x, *p);
      INTL_CHECK(p->dim() == 1 && p->size(0) == features, "batch_norm_1d: parameters and statistics must be " +
                                                             shape_str({features}) + ", got " + shape_str(p->shape()));
    }
  if (!training) {
    Tensor scale = rsqrt(add(running_var.detach(), eps));
    Tensor y = mul(sub(x, running_mean.detach()), scale);
    if (gamma.defined()) y = mul(y, gamma);
    if (beta.defined()) y = add(y, beta);
    return y;
  }
  INTL_CHECK(rows > 1, "batch_norm_1d in training needs more than one row per batch");
  BatchNormArgs args{rows, features, 1, eps, momentum};
  Tensor xc = x.is_contiguous() ? x.detach() : x.detach().contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mean = Tensor::empty({features}, x.dtype(), x.device());
  Tensor invstd = Tensor::empty({features}, x.dtype(), x.device());
  backend(x.device()).batchnorm_forward_train(args, xc, gamma.defined() ? gamma.detach() : Tensor(),
                                              beta.defined() ? beta.detach() : Tensor(), y, mean, invstd,
                                              running_mean, running_var);
  if (running_mean.defined()) running_mean.bump_version();
  if (running_var.defined()) running_var.bump_version();
  if (needs_grad({x, gamma, beta})) {
    record("batch_norm_1d", {x, gamma, beta}, y,
           [args, xc, gamma = gamma.defined() ? gamma.detach() : Tensor(), mean, invstd](const Tensor& g) {
             Tensor gc = g.is_contiguous() ? g : g.contiguous();
             Tensor dx = Tensor::empty(xc.shape(), xc.dtype(), xc.device());
             Tensor dgamma = Tensor::empty({args.features}, xc.dtype(), xc.device());
             Tensor dbeta = Tensor::empty({args.features}, xc.dtype(), xc.device());
             backend(xc.device()).batchnorm_backward_train(args, xc, gamma, mean, invstd, gc, dx, dgamma, dbeta);
             return std::vector<Tensor>{dx, dgamma, dbeta};
           });
  }
  return y;
}

}  // namespace intl
