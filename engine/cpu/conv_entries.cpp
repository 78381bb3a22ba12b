// Tensor-level wrappers of the NHWC convolution, batch-norm and pooling kernels for the CPU backend table.
#include "engine/cpu/conv_entries.h"

#include "engine/cpu/conv_kernels.h"
#include "engine/error.h"

namespace intl::cpu::entries {
namespace {

Conv2dShape shape_of(const Conv2dArgs& a) {
  return Conv2dShape{int(a.n), int(a.c_in), int(a.h), int(a.w), int(a.c_out), int(a.kh), int(a.kw), int(a.stride),
                     int(a.pad)};
}

Pool2dShape shape_of(const Pool2dArgs& a) {
  return Pool2dShape{int(a.n), int(a.c), int(a.h), int(a.w), int(a.k), int(a.stride), int(a.pad)};
}

NhwcShape shape_of(const BatchNorm2dArgs& a) { return NhwcShape{int(a.n), int(a.h), int(a.w), int(a.c)}; }

// The data pointer of an optional tensor (null when undefined).
template <class T>
T* ptr(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

void check_float(const Tensor& t, const char* op) {
  INTL_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64,
             std::string(op) + ": float32 or float64 only, got " + dtype_name(t.dtype()));
}

}  // namespace

void conv2d_forward(const Conv2dArgs& a, const Tensor& x, const Tensor& weight, const Tensor& bias,
                    const Tensor& y) {
  check_float(x, "conv2d");
  const Conv2dShape s = shape_of(a);
  if (x.dtype() == DType::f32)
    cpu::conv2d_forward(s, x.data<float>(), weight.data<float>(), a.weight_version, ptr<float>(bias),
                        y.data<float>());
  else
    conv2d_forward_reference(s, x.data<double>(), weight.data<double>(), ptr<double>(bias), y.data<double>());
}

void conv2d_backward_data(const Conv2dArgs& a, const Tensor& dy, const Tensor& weight, const Tensor& dx) {
  check_float(dy, "conv2d backward");
  const Conv2dShape s = shape_of(a);
  if (dy.dtype() == DType::f32)
    cpu::conv2d_backward_data(s, dy.data<float>(), weight.data<float>(), a.weight_version, dx.data<float>(), 0.f);
  else
    conv2d_backward_data_reference(s, dy.data<double>(), weight.data<double>(), dx.data<double>(), 0.0);
}

void conv2d_backward_filter(const Conv2dArgs& a, const Tensor& x, const Tensor& dy, const Tensor& dweight,
                            const Tensor& dbias) {
  check_float(x, "conv2d backward");
  const Conv2dShape s = shape_of(a);
  if (x.dtype() == DType::f32)
    cpu::conv2d_backward_filter(s, x.data<float>(), dy.data<float>(), dweight.data<float>(), ptr<float>(dbias), 0.f);
  else
    conv2d_backward_filter_reference(s, x.data<double>(), dy.data<double>(), dweight.data<double>(),
                                     ptr<double>(dbias), 0.0);
}

void maxpool2d_forward(const Pool2dArgs& a, const Tensor& x, const Tensor& y, const Tensor& indices) {
  check_float(x, "max_pool2d");
  if (x.dtype() == DType::f32)
    cpu::maxpool2d_forward<float>(shape_of(a), x.data<float>(), y.data<float>(), indices.data<int32_t>());
  else
    cpu::maxpool2d_forward<double>(shape_of(a), x.data<double>(), y.data<double>(), indices.data<int32_t>());
}

void maxpool2d_backward(const Pool2dArgs& a, const Tensor& dy, const Tensor& indices, const Tensor& dx) {
  check_float(dy, "max_pool2d backward");
  if (dy.dtype() == DType::f32)
    cpu::maxpool2d_backward<float>(shape_of(a), dy.data<float>(), indices.data<int32_t>(), dx.data<float>(), 0.f);
  else
    cpu::maxpool2d_backward<double>(shape_of(a), dy.data<double>(), indices.data<int32_t>(), dx.data<double>(),
                                    0.0);
}

void batchnorm2d_forward(const BatchNorm2dArgs& a, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& residual, const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd,
                         const Tensor& running_mean, const Tensor& running_var) {
  check_float(x, "batch_norm_2d");
  const NhwcShape s = shape_of(a);
  if (x.dtype() == DType::f32) {
    if (a.training)
      batchnorm2d_forward_train(s, x.data<float>(), ptr<float>(gamma), ptr<float>(beta), ptr<float>(residual), a.relu,
                                float(a.eps), float(a.momentum), y.data<float>(), ptr<float>(save_mean),
                                ptr<float>(save_invstd), ptr<float>(running_mean), ptr<float>(running_var));
    else
      batchnorm2d_forward_eval(s, x.data<float>(), ptr<float>(gamma), ptr<float>(beta), ptr<float>(residual), a.relu,
                               float(a.eps), running_mean.data<float>(), running_var.data<float>(), y.data<float>());
  } else {
    if (a.training)
      batchnorm2d_forward_train_reference(s, x.data<double>(), ptr<double>(gamma), ptr<double>(beta),
                                          ptr<double>(residual), a.relu, a.eps, a.momentum, y.data<double>(),
                                          ptr<double>(save_mean), ptr<double>(save_invstd),
                                          ptr<double>(running_mean), ptr<double>(running_var));
    else
      batchnorm2d_forward_eval_reference(s, x.data<double>(), ptr<double>(gamma), ptr<double>(beta),
                                         ptr<double>(residual), a.relu, a.eps, running_mean.data<double>(),
                                         running_var.data<double>(), y.data<double>());
  }
}

void batchnorm2d_backward(const BatchNorm2dArgs& a, const Tensor& x, const Tensor& y, const Tensor& dy,
                          const Tensor& gamma, const Tensor& save_mean, const Tensor& save_invstd,
                          const Tensor& running_mean, const Tensor& running_var, const Tensor& dx,
                          const Tensor& dgamma, const Tensor& dbeta, const Tensor& dresidual) {
  check_float(x, "batch_norm_2d backward");
  const NhwcShape s = shape_of(a);
  if (x.dtype() == DType::f32) {
    const float* yr = a.relu ? y.data<float>() : nullptr;
    if (a.training)
      batchnorm2d_backward_train(s, x.data<float>(), yr, dy.data<float>(), ptr<float>(gamma),
                                 save_mean.data<float>(), save_invstd.data<float>(), ptr<float>(dx),
                                 ptr<float>(dgamma), ptr<float>(dbeta), ptr<float>(dresidual), 0.f);
    else
      batchnorm2d_backward_eval(s, x.data<float>(), yr, dy.data<float>(), ptr<float>(gamma),
                                running_mean.data<float>(), running_var.data<float>(), float(a.eps), ptr<float>(dx),
                                ptr<float>(dgamma), ptr<float>(dbeta), ptr<float>(dresidual), 0.f);
  } else {
    const double* yr = a.relu ? y.data<double>() : nullptr;
    if (a.training)
      batchnorm2d_backward_train_reference(s, x.data<double>(), yr, dy.data<double>(), ptr<double>(gamma),
                                           save_mean.data<double>(), save_invstd.data<double>(), ptr<double>(dx),
                                           ptr<double>(dgamma), ptr<double>(dbeta), ptr<double>(dresidual), 0.0);
    else
      batchnorm2d_backward_eval_reference(s, x.data<double>(), yr, dy.data<double>(), ptr<double>(gamma),
                                          running_mean.data<double>(), running_var.data<double>(), a.eps,
                                          ptr<double>(dx), ptr<double>(dgamma), ptr<double>(dbeta),
                                          ptr<double>(dresidual), 0.0);
  }
}

}  // namespace intl::cpu::entries
