// Winograd F(4x4, 3x3) convolution (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016)
// for 3x3 stride-1 layers on NHWC float32 activations, the AVX2 build's kernel for the layers oneDNN 2.6 serves
// only with direct loops there. Each 6x6 input tile and each 3x3 filter are transformed; the 36 transformed
// positions are then 36 independent products over channels (one sgemm each: tiles x c_in by c_in x c_out); each
// 6x6 result transforms back to a 4x4 tile of outputs. That is 36 / 16 = 2.25 multiplications per output and
// input channel against the direct form's 9, for about twice the float rounding error of the direct form (checked
// against the float64 reference in tests/test_conv_kernels.cpp).
//
// The data gradient of a 3x3 stride-1 layer is itself such a convolution (dy convolved with each filter rotated
// by 180 degrees, input and output channels swapped, padding 2 - pad), so one kernel serves both directions; the
// filter gradient runs the same transforms transposed.
// Free of the engine and of any cache: conv2d.cpp keeps the transformed weights and the scratch memory.
#pragma once
#include <cstddef>

#include "engine/cpu/conv_kernels.h"

namespace intl::cpu::winograd {

// Whether the kernel takes a shape: 3x3, stride 1, padding 0 to 2, channel counts multiples of 8.
bool applies(const Conv2dShape& s);

// The data gradient of `s` as a forward convolution: dy (n, h_out, w_out, c_out) -> dx (n, h, w, c_in).
Conv2dShape data_gradient_shape(const Conv2dShape& s);

// Floats of a transformed weight: 36 x c_in x c_out.
size_t weight_floats(const Conv2dShape& s);
// u[ci][p][co] = (G g G^T)[p] for each filter g of the OIHW weight of `s`. With data_gradient, the filters of
// data_gradient_shape(s) from the same OIHW weight (each rotated by 180 degrees, c_in and c_out swapped).
void transform_weights(const Conv2dShape& s, const float* w_oihw, bool data_gradient, float* u);

// Floats of scratch memory `convolve` needs for a shape.
size_t scratch_floats(const Conv2dShape& s);
// y = conv(x, u) + bias + beta * y (bias may be null; beta = 0 writes y without reading it), u from
// transform_weights for this shape.
void convolve(const Conv2dShape& s, const float* x, const float* u, const float* bias, float* y, float beta,
              float* scratch);

// The filter gradient by the same transforms (each a transpose of the forward's): dw (OIHW, overwritten) =
// G^T (sum over tiles of (B^T x B)^T (A dy A^T)) G, the 36 sums (weight_floats(s) floats in `sums`) each one
// sgemm over the tiles of a chunk of images, added chunk after chunk in a fixed order.
void filter_gradient(const Conv2dShape& s, const float* x, const float* dy, float* dw_oihw, float* sums,
                     float* scratch);

}  // namespace intl::cpu::winograd
