// The differentiable ops. Each is written once on top of the backend table (engine/backend.h), with its
// backward right below its forward in engine/ops/*.cpp. Binary ops broadcast numpy-style.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace intl {

// --- elementwise (engine/ops/elementwise.cpp) ---
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor neg(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor square(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor relu(const Tensor& x);
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
inline Tensor operator*(double s, const Tensor& a) { return mul(a, s); }
inline Tensor operator+(const Tensor& a, double s) { return add(a, s); }
inline Tensor operator-(const Tensor& a, double s) { return add(a, -s); }
inline Tensor operator-(const Tensor& x) { return neg(x); }

// --- reductions (engine/ops/reduce.cpp) ---
Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim = false);
Tensor sum(const Tensor& x);  // all elements -> scalar
Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim = false);
Tensor mean(const Tensor& x);

// --- shape (engine/ops/shape.cpp) ---
Tensor reshape(const Tensor& x, const Shape& shape);  // one extent may be -1; copies if x is strided
Tensor transpose(const Tensor& x, int64_t axis0 = -2, int64_t axis1 = -1);  // a view
Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t stop);    // a view, [start, stop)
Tensor concat(const std::vector<Tensor>& xs, int64_t axis);
Tensor expand(const Tensor& x, const Shape& shape);  // broadcast view (stride 0)
Tensor eye(int64_t n, DType dtype = DType::f32, Device device = Device::cpu);
Tensor diagonal(const Tensor& x);  // of a square matrix, a view (n,)
// x converted to another floating dtype (a copy; x itself when the dtype is already right). The gradient is
// converted back, so a part of a graph can run in float64 inside a float32 network.
Tensor cast(const Tensor& x, DType dtype);

// --- linear algebra (engine/ops/matmul.cpp, engine/ops/linalg.cpp) ---
// (m x k) @ (k x n); batched when both have the same leading axes (rank 3).
Tensor matmul(const Tensor& a, const Tensor& b);
// out = alpha a b + beta out, into existing memory (a 2-D view whose rows are contiguous). Not recorded on
// the tape: for hand-written backward passes that assemble their products in place.
void matmul_out(const Tensor& a, const Tensor& b, const Tensor& out, double alpha = 1.0, double beta = 0.0);
// x (rows x in) @ w^T (in x out) + b: w is (out x in) as in PyTorch; b may be undefined.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);
struct EighResult {
  Tensor values;   // (n,) ascending
  Tensor vectors;  // (n x n), eigenvectors as columns
};
// Symmetric eigendecomposition of a (n x n); only the symmetric part of a's gradient is meaningful.
// Throws NumericalError when the solver does not converge.
// Backward uses the standard formula with 1 / (lambda_j - lambda_i): ties of eigenvalues make it infinite
// (a documented limitation; spectral functions with ties should use a divided-difference formula).
EighResult eigh(const Tensor& a);
// Lower Cholesky factor L with a = L L^T; throws NumericalError if a is not positive definite.
Tensor cholesky(const Tensor& a);
// X with L X = B (or L^T X = B when transpose) for lower-triangular L.
Tensor triangular_solve(const Tensor& l, const Tensor& b, bool transpose = false);

// --- normalisation and losses (engine/ops/norm.cpp, engine/ops/loss.cpp) ---
Tensor l2_normalize_rows(const Tensor& x, double eps = 1e-12);
// BatchNorm over the rows of a 2-D input (rows x features). Training: batch statistics, running statistics
// updated in place (unbiased variance, PyTorch's momentum). Eval: running statistics.
Tensor batch_norm_1d(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                     const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);
Tensor mse_loss(const Tensor& a, const Tensor& b);  // mean of squared differences
// Mean over rows of the softmax cross-entropy; labels int64 (rows,).
Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels);

// --- convolutional layers (engine/ops/conv.cpp); image activations are NHWC: (N, H, W, C) ---
// x (N, H, W, C_in), weight (C_out, C_in, kh, kw), bias (C_out) or undefined -> (N, H_out, W_out, C_out).
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding);
// BatchNorm2d: statistics per channel over (N, H, W); running statistics as batch_norm_1d.
Tensor batch_norm_2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                     const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);
// relu?(batch_norm_2d(x) + residual?) in one pass where the backend has the fused kernel (the tail of a ResNet
// block); residual (x's shape) may be undefined.
Tensor batch_norm_2d_fused(const Tensor& x, const Tensor& residual, bool relu, const Tensor& gamma,
                           const Tensor& beta, const Tensor& running_mean, const Tensor& running_var, bool training,
                           double momentum = 0.1, double eps = 1e-5);
Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding);
Tensor global_avg_pool(const Tensor& x);  // (N, H, W, C) -> (N, C)

}  // namespace intl
