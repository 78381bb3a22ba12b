// Raw-pointer CPU kernels for the convolutional layers of ResNet-18/50: convolution (oneDNN), spatial batch-norm
// (optionally fused with a residual add and ReLU), max and global-average pooling; each float32 kernel has a plain
// float64 reference twin for tests and gradient checks. Free of the tensor engine: engine ops wrap them.
//
// Activation layout: NHWC (channels-last) everywhere: x[((n * H + h) * W + w) * C + c]. Measured with oneDNN 2.6
// on this 2-core AVX-512 machine (CPU time of one thread, all 20 conv layers of CIFAR ResNet-18, forward +
// backward-data + backward-filter): batch 32 takes 0.75 s in NHWC against 1.27 s in NCHW (oneDNN serves NCHW
// with its slower gemm-based kernels), and batch 256 takes 5.9 s in NHWC, the same as oneDNN's own blocked
// nChw16c layout. In NHWC, batch-norm, ReLU, residual adds and pooling are unit-stride over channels, so every
// per-channel loop vectorises and BatchNorm2d is BatchNorm1d over N * H * W rows. Where oneDNN's blocked kernels
// pay (Winograd, tiny outputs, AVX2; see choose_kernel in conv2d.cpp) activations are staged in nChw16c or nChw8c
// internally. Weights stay in PyTorch's OIHW order (safetensors match torchvision); a kernel's own copy of a
// weight (oneDNN's blocked layout, OHWI for im2col + sgemm) is made once per weight version and cached.
//
// Memory: every kernel reuses its buffers; after the first call with a given shape no kernel asks the system
// allocator for memory. Kernels are not re-entrant: call them from one thread (they use OpenMP inside).
#pragma once
#include <cstddef>
#include <cstdint>

namespace intl::cpu {

// ---------------------------------------------------------------------------------------------------------------
// Convolution, groups = 1. x (n, h, w, c_in), weight (c_out, c_in, kh, kw), bias (c_out), y (n, h_out, w_out, c_out).
struct Conv2dShape {
  int n = 0, c_in = 0, h = 0, w = 0, c_out = 0, kh = 1, kw = 1, stride = 1, pad = 0;
  int h_out() const { return (h + 2 * pad - kh) / stride + 1; }
  int w_out() const { return (w + 2 * pad - kw) / stride + 1; }
  double flops() const { return 2.0 * n * c_out * h_out() * w_out() * double(c_in) * kh * kw; }  // forward
};

// y = conv(x, weight) + bias (bias may be null). `weight_version` lets the kernel keep oneDNN's reordered copy of
// the weight: pass a value that changes whenever the values at `weight` change and is never reused for other
// contents at the same address (e.g. a process-wide counter bumped on every optimizer step); 0 means "unknown" and
// re-reads the weight on every call. Sixteen sampled values are compared as well, which catches most callers that
// forget to change the version. One copy is kept per weight address, shape and direction until
// conv2d_release_cache. The first call with a shape creates (JIT-compiles) its oneDNN primitive.
void conv2d_forward(const Conv2dShape& s, const float* x, const float* weight, uint64_t weight_version,
                    const float* bias, float* y);
// dx = conv_transpose(dy, weight) + beta * dx (beta = 0 writes dx without reading it; beta = 1 accumulates).
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* weight, uint64_t weight_version,
                          float* dx, float beta);
// dweight = sum_n x (*) dy + beta * dweight; dbias (may be null) = sum dy over (n, h, w) + beta * dbias.
void conv2d_backward_filter(const Conv2dShape& s, const float* x, const float* dy, float* dweight, float* dbias,
                            float beta);

// Direct loops in double: the reference the fast kernels and finite differences are checked against.
void conv2d_forward_reference(const Conv2dShape& s, const double* x, const double* weight, const double* bias,
                              double* y);
void conv2d_backward_data_reference(const Conv2dShape& s, const double* dy, const double* weight, double* dx,
                                    double beta);
void conv2d_backward_filter_reference(const Conv2dShape& s, const double* x, const double* dy, double* dweight,
                                      double* dbias, double beta);

// Which kernels serve the calling thread's convolutions. `fastest` (the default) picks per shape, direction and
// ISA (choose_kernel in conv2d.cpp): with AVX-512, oneDNN's Winograd F(4x4, 3x3) for 3x3 stride-1 layers whose
// channel counts are multiples of 16 and that have at least 64 output tiles of 4x4 (1.3-3x faster; its
// transforms about double the float rounding error, ~2e-6 of the largest output on ResNet shapes) and oneDNN's
// direct kernels elsewhere; with AVX2 only, our Winograd F(4x4, 3x3) (conv_winograd.h) for the 3x3 stride-1
// layers with enough output pixels (all three passes), im2col + sgemm for the other deep 3x3 passes and
// oneDNN's direct kernels elsewhere. `direct`: oneDNN's direct kernels everywhere. `gemm`: im2col + sgemm
// everywhere. `winograd`: our Winograd wherever it applies, oneDNN's direct kernels for the rest.
enum class ConvKernels { fastest, direct, gemm, winograd };
void conv2d_set_kernels(ConvKernels kernels);
// Drops every cached oneDNN primitive, reordered weight and scratch buffer of the calling thread.
void conv2d_release_cache();

// ---------------------------------------------------------------------------------------------------------------
// Batch-norm per channel over (n, h, w): x, y, residual (n, h, w, c); gamma, beta, statistics (c).
// gamma / beta may be null (1 / 0). Fusion: y = relu?(gamma * xhat + beta + residual?) with residual optional.
struct NhwcShape {
  int n = 0, h = 0, w = 0, c = 0;
  int64_t rows() const { return int64_t(n) * h * w; }  // values per channel
};

// Training: normalises with the batch mean and biased variance, saves mean and 1/sqrt(var + eps), and (when
// running_mean / running_var are non-null) updates running = (1 - momentum) * running + momentum * stat with the
// unbiased variance, as PyTorch does.
void batchnorm2d_forward_train(const NhwcShape& s, const float* x, const float* gamma, const float* beta,
                               const float* residual, bool relu, float eps, float momentum, float* y,
                               float* save_mean, float* save_invstd, float* running_mean, float* running_var);
// Evaluation: normalises with the running statistics.
void batchnorm2d_forward_eval(const NhwcShape& s, const float* x, const float* gamma, const float* beta,
                              const float* residual, bool relu, float eps, const float* running_mean,
                              const float* running_var, float* y);
// Backward of the training forward. y is the forward's output and is read only when relu was fused (else null).
// Writes (grad_beta = 0) or accumulates (grad_beta = 1) dx, dgamma, dbeta and dresidual, each of which may be
// null; dresidual is the gradient of the fused residual (dy masked by the ReLU).
void batchnorm2d_backward_train(const NhwcShape& s, const float* x, const float* y, const float* dy,
                                const float* gamma, const float* save_mean, const float* save_invstd, float* dx,
                                float* dgamma, float* dbeta, float* dresidual, float grad_beta);
// Backward of the evaluation forward (statistics are constants).
void batchnorm2d_backward_eval(const NhwcShape& s, const float* x, const float* y, const float* dy,
                               const float* gamma, const float* running_mean, const float* running_var, float eps,
                               float* dx, float* dgamma, float* dbeta, float* dresidual, float grad_beta);

// References in double: two-pass statistics, one channel at a time, same contracts.
void batchnorm2d_forward_train_reference(const NhwcShape& s, const double* x, const double* gamma,
                                         const double* beta, const double* residual, bool relu, double eps,
                                         double momentum, double* y, double* save_mean, double* save_invstd,
                                         double* running_mean, double* running_var);
void batchnorm2d_forward_eval_reference(const NhwcShape& s, const double* x, const double* gamma,
                                        const double* beta, const double* residual, bool relu, double eps,
                                        const double* running_mean, const double* running_var, double* y);
void batchnorm2d_backward_train_reference(const NhwcShape& s, const double* x, const double* y,
                                          const double* dy, const double* gamma, const double* save_mean,
                                          const double* save_invstd, double* dx, double* dgamma, double* dbeta,
                                          double* dresidual, double grad_beta);
void batchnorm2d_backward_eval_reference(const NhwcShape& s, const double* x, const double* y,
                                         const double* dy, const double* gamma, const double* running_mean,
                                         const double* running_var, double eps, double* dx, double* dgamma,
                                         double* dbeta, double* dresidual, double grad_beta);

// ---------------------------------------------------------------------------------------------------------------
// Pooling. x (n, h, w, c), y (n, h_out, w_out, c). Padding never wins a max (it is -infinity).
struct Pool2dShape {
  int n = 0, c = 0, h = 0, w = 0, k = 3, stride = 2, pad = 1;
  int h_out() const { return (h + 2 * pad - k) / stride + 1; }
  int w_out() const { return (w + 2 * pad - k) / stride + 1; }
};

// Max pooling; argmax (y's shape, may be null) receives the position ih * w + iw of each maximum in its input
// plane (the first one on ties), which the backward scatters dy to. dx = scatter(dy) + beta * dx.
// Instantiated for float and double (the same plain loops serve as the reference).
template <class T>
void maxpool2d_forward(const Pool2dShape& s, const T* x, T* y, int32_t* argmax);
template <class T>
void maxpool2d_backward(const Pool2dShape& s, const T* dy, const int32_t* argmax, T* dx, T beta);

// Adaptive average pooling to 1 x 1: x (n, h, w, c) -> y (n, c); dx = dy / (h w) broadcast + beta * dx.
template <class T>
void avgpool2d_global_forward(const NhwcShape& s, const T* x, T* y);
template <class T>
void avgpool2d_global_backward(const NhwcShape& s, const T* dy, T* dx, T beta);

}  // namespace intl::cpu
