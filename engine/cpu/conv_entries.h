// The CPU backend's entries for the convolutional layers: tensor-level wrappers over the NHWC kernels of
// engine/cpu/conv_kernels.h (float32: oneDNN convolutions and the fused batch-norm; float64: the kernels' plain
// reference loops, which the gradient checks run on).
#pragma once
#include "engine/backend.h"

namespace intl::cpu::entries {

void conv2d_forward(const Conv2dArgs& args, const Tensor& x, const Tensor& weight, const Tensor& bias,
                    const Tensor& y);
void conv2d_backward_data(const Conv2dArgs& args, const Tensor& dy, const Tensor& weight, const Tensor& dx);
void conv2d_backward_filter(const Conv2dArgs& args, const Tensor& x, const Tensor& dy, const Tensor& dweight,
                            const Tensor& dbias);
void maxpool2d_forward(const Pool2dArgs& args, const Tensor& x, const Tensor& y, const Tensor& indices);
void maxpool2d_backward(const Pool2dArgs& args, const Tensor& dy, const Tensor& indices, const Tensor& dx);
void batchnorm2d_forward(const BatchNorm2dArgs& args, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& residual, const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd,
                         const Tensor& running_mean, const Tensor& running_var);
void batchnorm2d_backward(const BatchNorm2dArgs& args, const Tensor& x, const Tensor& y, const Tensor& dy,
                          const Tensor& gamma, const Tensor& save_mean, const Tensor& save_invstd,
                          const Tensor& running_mean, const Tensor& running_var, const Tensor& dx,
                          const Tensor& dgamma, const Tensor& dbeta, const Tensor& dresidual);

}  // namespace intl::cpu::entries
