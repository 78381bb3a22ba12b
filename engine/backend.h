// The backend table: the short list of primitive kernels every device implements. Ops (engine/ops) are
// written once on top of it; a device is one instance of this struct (engine/cpu, engine/cuda). Dispatch
// happens once per kernel call, never per element. Kernels take tensors already allocated on their device;
// unless an entry says otherwise, outputs are contiguous and inputs may be strided only where stated.
// Whether CUDA was built, and where its backend is, only engine/cuda/entry.h knows (the cuda_*() functions below).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/tensor.h"

namespace intl {

enum class UnaryOp : uint8_t {
  neg, exp, log, sqrt, rsqrt, abs, relu, square,
  pow,        // x^s
  scale,      // s * x
  add_scalar, // x + s
  sign,
};

enum class BinaryOp : uint8_t {
  add, sub, mul, div,
  relu_mask,  // a * (b > 0): the gradient of relu
};

// Row-major C (m x n) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C, `batch` times with element strides.
struct GemmArgs {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  double alpha = 1.0, beta = 0.0;
  const void* a = nullptr; int64_t lda = 0, stride_a = 0;
  const void* b = nullptr; int64_t ldb = 0, stride_b = 0;
  void* c = nullptr;       int64_t ldc = 0, stride_c = 0;
  int64_t batch = 1;
  DType dtype = DType::f32;
  bool bf16 = false;  // float32 only: bfloat16 operands, float32 accumulation (GPU; the CPU ignores it)
};

// Batch normalisation per feature over (rows, spatial): x is (rows, features, spatial) contiguous (BatchNorm1d
// for spatial = 1; BatchNorm2d on NHWC activations is this with rows = N * H * W, spatial = 1).
struct BatchNormArgs {
  int64_t rows = 0, features = 0, spatial = 1;
  double eps = 1e-5, momentum = 0.1;
};

// Image activations are NHWC everywhere (the reason is in engine/ops/conv.cpp).
// 2-D convolution, groups = 1. x (n, h, w, c_in), weight (c_out, c_in, kh, kw) as PyTorch (OIHW), y (n, h_out,
// w_out, c_out). `weight_version` is the weight tensor's version (Tensor::version: unique per in-place update,
// 0 = unknown), which lets a kernel keep a reordered copy of the weight between calls.
//
// `saved` carries a device's own data from one convolution's forward to its backward passes: the op passes
// the same args to all three and drops `saved` when its backward is done. CUDA keeps the bfloat16 copies of
// x (when `keep_input`, i.e. a filter gradient will be asked for) and of dy there, so a bf16 step converts
// each once; the CPU leaves it empty. Its type is each device's own (engine/cuda/conv.cpp).
struct ConvSaved;
struct Conv2dArgs {
  int64_t n = 0, c_in = 0, h = 0, w = 0, c_out = 0, kh = 1, kw = 1, stride = 1, pad = 0;
  uint64_t weight_version = 0;
  bool bf16 = false;  // float32 only: in bfloat16 with float accumulation (GPU; the CPU ignores it)
  bool keep_input = false;
  mutable std::shared_ptr<ConvSaved> saved = nullptr;
  int64_t h_out() const { return (h + 2 * pad - kh) / stride + 1; }
  int64_t w_out() const { return (w + 2 * pad - kw) / stride + 1; }
};

// Max pooling with a square window; x (n, h, w, c), y (n, h_out, w_out, c).
struct Pool2dArgs {
  int64_t n = 0, c = 0, h = 0, w = 0, k = 2, stride = 2, pad = 0;
  int64_t h_out() const { return (h + 2 * pad - k) / stride + 1; }
  int64_t w_out() const { return (w + 2 * pad - k) / stride + 1; }
};

// BatchNorm2d on NHWC activations (n, h, w, c), statistics per channel, optionally fused with a residual add
// and ReLU: y = relu?(gamma * xhat + beta + residual?).
struct BatchNorm2dArgs {
  int64_t n = 0, h = 0, w = 0, c = 0;
  double eps = 1e-5, momentum = 0.1;
  bool training = true, relu = false;
};

// One parameter of an SGD step: the parameter, its gradient and its momentum buffer (contiguous, same shape
// and dtype; momentum undefined for plain SGD), with the weight decay it takes.
struct SgdParam {
  Tensor param, grad, momentum;
  double weight_decay = 0.0;
};
struct SgdArgs {
  double lr = 0.0, momentum = 0.0;
  bool nesterov = false, first_step = false;
};

struct Backend {
  const char* name;

  // Memory: a caching allocator; `free` receives the size given to `alloc`.
  void* (*alloc)(size_t bytes);
  void (*free)(void* ptr, size_t bytes);
  // dst (contiguous) = src (any strides, same shape and device; dtype may differ: converts).
  void (*copy)(const Tensor& src, const Tensor& dst);
  void (*fill)(const Tensor& dst, double value);
  // Standard normal (uniform when `uniform`: [lo, hi)) from Philox: element i uses counter block i.
  void (*random)(const Tensor& dst, bool uniform, double lo, double hi, uint64_t seed, uint64_t stream);

  // y = op(x, s); x and y contiguous with equal numel (y may alias x).
  void (*unary)(UnaryOp op, const Tensor& x, const Tensor& y, double s);
  // out = op(a, b) with broadcasting: a and b are views already expanded to out's shape (stride 0 on
  // broadcast axes); out is contiguous.
  void (*binary)(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out);
  // out = sum of x over the axes where out has extent 1 and x does not (same rank; x contiguous).
  void (*reduce_sum)(const Tensor& x, const Tensor& out);

  void (*gemm)(const GemmArgs& args);
  // Symmetric eigendecomposition of a (n x n), batched over leading axes: a is overwritten; on return
  // `vectors` (n x n) holds eigenvectors as columns and `values` (n) ascending eigenvalues. Returns the
  // solver's info (0 = success) of the first failing matrix.
  int (*eigh)(const Tensor& a, const Tensor& values, const Tensor& vectors);
  // Lower Cholesky factor in place (upper triangle zeroed). Returns info (0 = success, k > 0: not positive
  // definite at k).
  int (*cholesky)(const Tensor& a);
  // Solves op(L) X = B in place of B for lower-triangular L (n x n), B (n x k); `transpose` uses L^T.
  void (*trsm_lower)(const Tensor& l, const Tensor& b, bool transpose);

  // Batch norm in training mode: writes y, saves mean and inverse std (features), updates running statistics
  // (unbiased variance, PyTorch's momentum) when they are defined. gamma/beta may be undefined (1 / 0).
  void (*batchnorm_forward_train)(const BatchNormArgs& args, const Tensor& x, const Tensor& gamma,
                                  const Tensor& beta, const Tensor& y, const Tensor& save_mean,
                                  const Tensor& save_invstd, const Tensor& running_mean,
                                  const Tensor& running_var);
  // dx (and dgamma, dbeta, written) from dy using the saved statistics.
  void (*batchnorm_backward_train)(const BatchNormArgs& args, const Tensor& x, const Tensor& gamma,
                                   const Tensor& save_mean, const Tensor& save_invstd, const Tensor& dy,
                                   const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta);

  // Convolution; the backward kernels write (beta = 0) their outputs; db may be undefined.
  void (*conv2d_forward)(const Conv2dArgs& args, const Tensor& x, const Tensor& weight, const Tensor& bias,
                         const Tensor& y);
  void (*conv2d_backward_data)(const Conv2dArgs& args, const Tensor& dy, const Tensor& weight, const Tensor& dx);
  void (*conv2d_backward_filter)(const Conv2dArgs& args, const Tensor& x, const Tensor& dy, const Tensor& dweight,
                                 const Tensor& dbias);
  // Max pooling; `indices` (int32, y's shape) records the argmax within each input plane (ih * w + iw of its
  // (n, c)) for the backward.
  void (*maxpool2d_forward)(const Pool2dArgs& args, const Tensor& x, const Tensor& y, const Tensor& indices);
  void (*maxpool2d_backward)(const Pool2dArgs& args, const Tensor& dy, const Tensor& indices, const Tensor& dx);
  // Fused BatchNorm2d. residual may be undefined. Training: batch statistics (save_mean / save_invstd written,
  // running statistics updated when defined, as batchnorm_forward_train); eval: the running statistics, save_*
  // unused. The backward reads y only when args.relu, and writes each of dx, dgamma, dbeta, dresidual that is
  // defined. Both null on a device without fused kernels: the op then composes batch_norm_1d, add and relu.
  void (*batchnorm2d_forward)(const BatchNorm2dArgs& args, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              const Tensor& residual, const Tensor& y, const Tensor& save_mean,
                              const Tensor& save_invstd, const Tensor& running_mean, const Tensor& running_var);
  void (*batchnorm2d_backward)(const BatchNorm2dArgs& args, const Tensor& x, const Tensor& y, const Tensor& dy,
                               const Tensor& gamma, const Tensor& save_mean, const Tensor& save_invstd,
                               const Tensor& running_mean, const Tensor& running_var, const Tensor& dx,
                               const Tensor& dgamma, const Tensor& dbeta, const Tensor& dresidual);

  // Row-wise log-softmax cross-entropy: logits (rows x classes), labels int64 (rows); writes the per-row
  // loss (rows) and, when dlogits is defined, softmax - onehot (rows x classes).
  void (*softmax_xent)(const Tensor& logits, const Tensor& labels, const Tensor& loss, const Tensor& dlogits);

  // Optimizer steps (PyTorch's rules). SGD takes every parameter of a step at once, as PyTorch's fused and
  // foreach steps do (CUDA: one launch per few dozen tensors); Adam one parameter tensor (contiguous, same
  // shape as grad and state).
  void (*sgd_step)(const SgdArgs& args, const std::vector<SgdParam>& params);
  void (*adam_step)(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                    double lr, double beta1, double beta2, double eps, double weight_decay, bool decoupled,
                    int64_t step);

  // Returns when every kernel queued so far has finished (a no-op on the CPU, whose kernels are synchronous).
  void (*synchronize)();
};

const Backend& cpu_backend();
const Backend& cuda_backend();  // throws "built without CUDA" or "no usable GPU" when unavailable

// The table with every kernel entry timed (engine/profile.h); used instead of the device's own while
// profiling is on.
const Backend& profiled_backend(Device device);
namespace detail {
extern std::atomic<bool> g_profiling;  // set by set_backend_profiling, between steps
}

inline const Backend& backend(Device device) {
  if (detail::g_profiling.load(std::memory_order_relaxed)) return profiled_backend(device);
  return device == Device::cpu ? cpu_backend() : cuda_backend();
}

// True when this build has CUDA and a GPU answers; any start-up error counts as "no GPU".
bool cuda_available();
bool cuda_built();
std::string cuda_device_name();  // "" when none
// Why no GPU is usable, in the CUDA runtime's words where it answered ("" when one is).
std::string cuda_unavailable_reason();
// Whether this build's CUDA backend can be loaded, asked even without a GPU or driver: "" when it can (or is
// linked in), otherwise why not (engine/cuda/entry.h).
std::string cuda_backend_load_error();
// "cpu" / "cuda" / "auto" -> a device; asking for cuda where there is none is a UsageError.
Device resolve_device(const std::string& name);

}  // namespace intl
