// The CUDA backend's entries, one per slot of the backend table (engine/backend.h), each mirroring its CPU
// twin in engine/cpu. engine/cuda/backend.cpp assembles them into the table. Plain C++: no CUDA types here.
#pragma once
#include "engine/backend.h"

namespace intl::cuda {

// elementwise.cu
void copy(const Tensor& src, const Tensor& dst);  // also host <-> device when one side is on the CPU
void fill(const Tensor& dst, double value);
// float32 <-> bfloat16 (2 bytes per value, round to nearest even) on the stream, for bf16 convolutions.
void to_bf16(const float* src, void* dst, int64_t n);
void from_bf16(const void* src, float* dst, int64_t n);
// A convolution weight between the engine's OIHW and cuDNN's KRSC (O, kh, kw, I): `oihw` is a contiguous f32 or
// f64 tensor (c_out, c_in, kh, kw); the KRSC side holds the same dtype, or bfloat16 when `bf16` (oihw f32).
void weight_to_krsc(const Tensor& oihw, void* krsc, bool bf16);
void weight_from_krsc(const void* krsc, bool bf16, const Tensor& oihw);
void random(const Tensor& dst, bool uniform, double lo, double hi, uint64_t seed, uint64_t stream);
void unary(UnaryOp op, const Tensor& x, const Tensor& y, double s);
void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out);
void reduce_sum(const Tensor& x, const Tensor& out);
// Zeroes the strict upper triangle of each row-major (n x n) matrix of `a` (batched over leading axes).
void zero_upper_triangle(const Tensor& a);

// blas.cpp, solver.cpp
void gemm(const GemmArgs& args);
int eigh(const Tensor& a, const Tensor& values, const Tensor& vectors);
int cholesky(const Tensor& a);
void trsm_lower(const Tensor& l, const Tensor& b, bool transpose);

// nn.cu
void batchnorm_forward_train(const BatchNormArgs& args, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd,
                             const Tensor& running_mean, const Tensor& running_var);
void batchnorm_backward_train(const BatchNormArgs& args, const Tensor& x, const Tensor& gamma,
                              const Tensor& save_mean, const Tensor& save_invstd, const Tensor& dy,
                              const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta);
void maxpool2d_forward(const Pool2dArgs& args, const Tensor& x, const Tensor& y, const Tensor& indices);
void maxpool2d_backward(const Pool2dArgs& args, const Tensor& dy, const Tensor& indices, const Tensor& dx);

void softmax_xent(const Tensor& logits, const Tensor& labels, const Tensor& loss, const Tensor& dlogits);
void sgd_step(const SgdArgs& args, const std::vector<SgdParam>& params);
void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq, double lr,
               double beta1, double beta2, double eps, double weight_decay, bool decoupled, int64_t step);

// batchnorm2d.cu: NHWC spatial batch norm fused with the residual add and ReLU (Backend::batchnorm2d_*).
void batchnorm2d_forward(const BatchNorm2dArgs& args, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& residual, const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd,
                         const Tensor& running_mean, const Tensor& running_var);
void batchnorm2d_backward(const BatchNorm2dArgs& args, const Tensor& x, const Tensor& y, const Tensor& dy,
                          const Tensor& gamma, const Tensor& save_mean, const Tensor& save_invstd,
                          const Tensor& running_mean, const Tensor& running_var, const Tensor& dx,
                          const Tensor& dgamma, const Tensor& dbeta, const Tensor& dresidual);

// conv.cpp (cuDNN)
void conv2d_forward(const Conv2dArgs& args, const Tensor& x, const Tensor& weight, const Tensor& bias,
                    const Tensor& y);
void conv2d_backward_data(const Conv2dArgs& args, const Tensor& dy, const Tensor& weight, const Tensor& dx);
void conv2d_backward_filter(const Conv2dArgs& args, const Tensor& x, const Tensor& dy, const Tensor& dweight,
                            const Tensor& dbias);

}  // namespace intl::cuda
