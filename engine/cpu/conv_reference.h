// Reference CPU kernels for 2-D convolution and max pooling on NCHW activations, in float and double: im2col +
// GEMM for the convolution, direct loops for pooling. Plain and obviously correct, and not in the backend table
// (the engine's activations are NHWC): tests transpose to NCHW and check the NHWC ops against these.
#pragma once
#include "engine/backend.h"

namespace intl::cpu::reference {

void conv2d_forward(const Conv2dArgs& args, const Tensor& x, const Tensor& weight, const Tensor& bias,
                    const Tensor& y);
void conv2d_backward_data(const Conv2dArgs& args, const Tensor& dy, const Tensor& weight, const Tensor& dx);
void conv2d_backward_filter(const Conv2dArgs& args, const Tensor& x, const Tensor& dy, const Tensor& dweight,
                            const Tensor& dbias);
void maxpool2d_forward(const Pool2dArgs& args, const Tensor& x, const Tensor& y, const Tensor& indices);
void maxpool2d_backward(const Pool2dArgs& args, const Tensor& dy, const Tensor& indices, const Tensor& dx);

}  // namespace intl::cpu::reference
