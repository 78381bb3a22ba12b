// CUDA kernels for batch norm (BatchNorm1d and spatial), max pooling, softmax cross-entropy and the
// optimizer steps, mirroring engine/cpu/nn.cpp formula for formula: statistics accumulate in double as the
// CPU does, so the two devices differ only by summation order. Kernels first, launchers after.
#include <cmath>

#include "engine/cuda/kernels.h"
#include "engine/cuda/launch.cuh"

namespace intl::cuda {
namespace {

// One block per feature f of x (rows, features, spatial); element j of the feature is (r, k) = (j / S, j % S).
template <class T>
__global__ void batchnorm_forward_kernel(const T* x, const T* gamma, const T* beta, T* y, T* save_mean,
                                         T* save_invstd, T* running_mean, T* running_var, int64_t R, int64_t F,
                                         int64_t S, double eps, double momentum) {
  __shared__ double shared[32];
  const int64_t f = blockIdx.x, count = R * S;
  auto at = [=](int64_t j) { return ((j / S) * F + f) * S + j % S; };
  double s = 0;
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x) s += double(x[at(j)]);
  const double mean = block_sum(s, shared) / double(count);
  double v = 0;
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
    const double d = double(x[at(j)]) - mean;
    v += d * d;
  }
  v = block_sum(v, shared);
  const double var = v / double(count), invstd = 1.0 / sqrt(var + eps);
  if (threadIdx.x == 0) {
    save_mean[f] = T(mean);
    save_invstd[f] = T(invstd);
    if (running_mean) running_mean[f] = T((1 - momentum) * running_mean[f] + momentum * mean);
    if (running_var)
      running_var[f] = T((1 - momentum) * running_var[f] + momentum * (count > 1 ? v / double(count - 1) : var));
  }
  const double g = gamma ? double(gamma[f]) : 1.0, b = beta ? double(beta[f]) : 0.0;
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
    const int64_t i = at(j);
    y[i] = T((double(x[i]) - mean) * invstd * g + b);
  }
}

// dbeta = sum dy, dgamma = sum dy xhat, dx = gamma invstd / N (N dy - dbeta - xhat dgamma).
template <class T>
__global__ void batchnorm_backward_kernel(const T* x, const T* gamma, const T* save_mean, const T* save_invstd,
                                          const T* dy, T* dx, T* dgamma, T* dbeta, int64_t R, int64_t F, int64_t S) {
  __shared__ double shared[32];
  const int64_t f = blockIdx.x, count = R * S;
  auto at = [=](int64_t j) { return ((j / S) * F + f) * S + j % S; };
  const double mean = save_mean[f], invstd = save_invstd[f];
  double sdy = 0, sdyx = 0;
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
    const int64_t i = at(j);
    sdy += double(dy[i]);
    sdyx += double(dy[i]) * (double(x[i]) - mean) * invstd;
  }
  sdy = block_sum(sdy, shared);
  sdyx = block_sum(sdyx, shared);
  if (threadIdx.x == 0) {
    if (dgamma) dgamma[f] = T(sdyx);
    if (dbeta) dbeta[f] = T(sdy);
  }
  if (!dx) return;
  const double k0 = (gamma ? double(gamma[f]) : 1.0) * invstd / double(count);
  for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
    const int64_t i = at(j);
    const double xhat = (double(x[i]) - mean) * invstd;
    dx[i] = T(k0 * (double(count) * double(dy[i]) - sdy - xhat * sdyx));
  }
}

// NHWC activations. One thread per output; the index is the argmax's position ih * w + iw within its input
// plane (the first of equals; the first NaN wins over numbers, so that it propagates as in PyTorch), as on
// the CPU (engine/cpu/pool2d.cpp).
//
// The index arithmetic runs in I: 32-bit where the tensors allow (ResNet-50's stem pool at batch 256 has 2e8
// elements), as a GPU divides 64-bit integers in software, several times slower.
template <class T, class I>
__global__ void maxpool_forward_kernel(const T* x, T* y, int32_t* indices, int64_t total, Pool2dArgs a,
                                       int64_t h_out, int64_t w_out) {
  INTL_GRID_STRIDE(t, total) {
    const I u = I(t), C = I(a.c), W = I(w_out), H = I(h_out);
    const int64_t c = u % C, ow = (u / C) % W, oh = (u / (C * W)) % H, n = u / (C * W * H);
    const T* xp = x + n * a.h * a.w * a.c + c;  // element (ih, iw) of the plane at xp[(ih * w + iw) * c]
    using P = compute_t<T>;
    P best = P(-INFINITY);  // stays so (index -1) only for a window entirely in the padding
    int64_t arg = -1;
    for (int64_t i = 0; i < a.k; ++i) {
      const int64_t ih = oh * a.stride - a.pad + i;
      if (ih < 0 || ih >= a.h) continue;
      for (int64_t j = 0; j < a.k; ++j) {
        const int64_t iw = ow * a.stride - a.pad + j;
        if (iw < 0 || iw >= a.w) continue;
        const P v = widen(xp[(ih * a.w + iw) * a.c]);
        if (arg < 0 || v > best || (v != v && best == best)) {
          best = v;
          arg = ih * a.w + iw;
        }
      }
    }
    y[t] = narrow<T>(best);
    indices[t] = int32_t(arg);
  }
}

// Gather form (no atomics, deterministic): each input element sums dy over the windows that chose it.
template <class T, class I>
__global__ void maxpool_backward_kernel(const T* dy, const int32_t* indices, T* dx, int64_t total, Pool2dArgs a,
                                        int64_t h_out, int64_t w_out) {
  INTL_GRID_STRIDE(t, total) {
    const I u = I(t), C = I(a.c), W = I(a.w), H = I(a.h), S = I(a.stride), P = I(a.pad), K = I(a.k);
    const I c = u % C, iw = (u / C) % W, ih = (u / (C * W)) % H;
    const int64_t n = u / (C * W * H);
    const I lo_h = ih + P - K + 1, lo_w = iw + P - K + 1;
    const I oh0 = lo_h <= 0 ? 0 : (lo_h + S - 1) / S;
    const I ow0 = lo_w <= 0 ? 0 : (lo_w + S - 1) / S;
    const I oh1 = min(I((ih + P) / S), I(h_out - 1)), ow1 = min(I((iw + P) / S), I(w_out - 1));
    const int32_t me = int32_t(ih * a.w + iw);
    const int64_t base = n * h_out * w_out * a.c + c;
    compute_t<T> acc = 0;
    for (I oh = oh0; oh <= oh1; ++oh)
      for (I ow = ow0; ow <= ow1; ++ow) {
        const int64_t o = base + (int64_t(oh) * w_out + ow) * a.c;
        if (indices[o] == me) acc += widen(dy[o]);
      }
    dx[t] = narrow<T>(acc);
  }
}

// One block per row: log-sum-exp in double, loss = lse - logit[label], dlogits = softmax - onehot.
template <class T>
__global__ void softmax_xent_kernel(const T* logits, const int64_t* labels, T* loss, T* dlogits, int64_t C) {
  __shared__ double shared[32];
  const int64_t r = blockIdx.x;
  const T* row = logits + r * C;
  const int64_t y = labels[r];
  double mx = -INFINITY;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) mx = fmax(mx, double(row[c]));
  mx = block_reduce(mx, double(-INFINITY), shared, MaxOp());
  double s = 0;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += exp(double(row[c]) - mx);
  const double lse = mx + log(block_sum(s, shared));
  if (threadIdx.x == 0) loss[r] = (y >= 0 && y < C) ? T(lse - double(row[y])) : T(NAN);
  if (dlogits)
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
      dlogits[r * C + c] = T(exp(double(row[c]) - lse) - (c == y ? 1.0 : 0.0));
}

template <class T>
__global__ void sgd_kernel(T* p, const T* g, T* buf, int64_t n, T lr, T momentum, T wd, bool nesterov, bool first) {
  INTL_GRID_STRIDE(i, n) {
    T d = g[i] + wd * p[i];
    if (buf) {
      buf[i] = first ? d : momentum * buf[i] + d;
      d = nesterov ? d + momentum * buf[i] : buf[i];
    }
    p[i] -= lr * d;
  }
}

template <class T>
__global__ void adam_kernel(T* p, const T* g, T* m, T* v, int64_t n, double lr, double beta1, double beta2, double eps,
                            double wd, bool decoupled, double step_size, double sqrt_bc2) {
  INTL_GRID_STRIDE(i, n) {
    T d = g[i];
    if (decoupled) p[i] *= T(1 - lr * wd);
    else d += T(wd) * p[i];
    m[i] = T(beta1) * m[i] + T(1 - beta1) * d;
    v[i] = T(beta2) * v[i] + T(1 - beta2) * d * d;
    p[i] -= T(step_size) * m[i] / (dev_sqrt(v[i]) / T(sqrt_bc2) + T(eps));
  }
}

void check_features(const char* what, int64_t features) {
  INTL_CHECK(features <= 0x7fffffff, std::string(what) + ": too many features for one block each");
}

}  // namespace

void batchnorm_forward_train(const BatchNormArgs& a, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd,
                             const Tensor& running_mean, const Tensor& running_var) {
  check_features("batchnorm", a.features);
  if (a.features == 0) return;
  dispatch_float(x.dtype(), [&](auto z) {
    using T = decltype(z);
    batchnorm_forward_kernel<T><<<unsigned(a.features), kThreads, 0, stream()>>>(
        ptr<const T>(x), ptr<const T>(gamma), ptr<const T>(beta), ptr<T>(y), ptr<T>(save_mean), ptr<T>(save_invstd),
        ptr<T>(running_mean), ptr<T>(running_var), a.rows, a.features, a.spatial, a.eps, a.momentum);
    CUDA_CHECK_LAUNCH();
  });
}

void batchnorm_backward_train(const BatchNormArgs& a, const Tensor& x, const Tensor& gamma,
                              const Tensor& save_mean, const Tensor& save_invstd, const Tensor& dy,
                              const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta) {
  check_features("batchnorm", a.features);
  if (a.features == 0) return;
  dispatch_float(x.dtype(), [&](auto z) {
    using T = decltype(z);
    batchnorm_backward_kernel<T><<<unsigned(a.features), kThreads, 0, stream()>>>(
        ptr<const T>(x), ptr<const T>(gamma), ptr<const T>(save_mean), ptr<const T>(save_invstd), ptr<const T>(dy),
        ptr<T>(dx), ptr<T>(dgamma), ptr<T>(dbeta), a.rows, a.features, a.spatial);
    CUDA_CHECK_LAUNCH();
  });
}

void maxpool2d_forward(const Pool2dArgs& a, const Tensor& x, const Tensor& y, const Tensor& indices) {
  INTL_CHECK(indices.dtype() == DType::i32, "maxpool2d: indices must be int32");
  const int64_t total = a.n * a.c * a.h_out() * a.w_out();
  if (total == 0) return;
  dispatch_storage(x.dtype(), "max_pool2d", [&](auto z) {
    using T = decltype(z);
    if (total <= INT32_MAX)
      maxpool_forward_kernel<T, int32_t><<<grid_for(total), kThreads, 0, stream()>>>(
          ptr<const T>(x), ptr<T>(y), ptr<int32_t>(indices), total, a, a.h_out(), a.w_out());
    else
      maxpool_forward_kernel<T, int64_t><<<grid_for(total), kThreads, 0, stream()>>>(
          ptr<const T>(x), ptr<T>(y), ptr<int32_t>(indices), total, a, a.h_out(), a.w_out());
    CUDA_CHECK_LAUNCH();
  });
}

void maxpool2d_backward(const Pool2dArgs& a, const Tensor& dy, const Tensor& indices, const Tensor& dx) {
  const int64_t total = a.n * a.c * a.h * a.w;
  if (total == 0) return;
  dispatch_storage(dx.dtype(), "max_pool2d backward", [&](auto z) {
    using T = decltype(z);
    if (total <= INT32_MAX)  // the forward's elements are fewer
      maxpool_backward_kernel<T, int32_t><<<grid_for(total), kThreads, 0, stream()>>>(
          ptr<const T>(dy), ptr<const int32_t>(indices), ptr<T>(dx), total, a, a.h_out(), a.w_out());
    else
      maxpool_backward_kernel<T, int64_t><<<grid_for(total), kThreads, 0, stream()>>>(
          ptr<const T>(dy), ptr<const int32_t>(indices), ptr<T>(dx), total, a, a.h_out(), a.w_out());
    CUDA_CHECK_LAUNCH();
  });
}

void softmax_xent(const Tensor& logits, const Tensor& labels, const Tensor& loss, const Tensor& dlogits) {
  const int64_t R = logits.size(0), C = logits.size(1);
  INTL_CHECK(labels.dtype() == DType::i64 && labels.device() == Device::cuda,
             "softmax_xent: labels must be int64 on cuda");
  if (R == 0) return;
  dispatch_float(logits.dtype(), [&](auto z) {
    using T = decltype(z);
    softmax_xent_kernel<T><<<unsigned(R), kThreads, 0, stream()>>>(ptr<const T>(logits), ptr<const int64_t>(labels),
                                                                   ptr<T>(loss), ptr<T>(dlogits), C);
    CUDA_CHECK_LAUNCH();
  });
}

void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, double lr, double momentum,
              double weight_decay, bool nesterov, bool first_step) {
  const int64_t n = param.numel();
  if (n == 0) return;
  dispatch_float(param.dtype(), [&](auto z) {
    using T = decltype(z);
    sgd_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(ptr<T>(param), ptr<const T>(grad), ptr<T>(momentum_buf), n,
                                                          T(lr), T(momentum), T(weight_decay), nesterov, first_step);
    CUDA_CHECK_LAUNCH();
  });
}

void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq, double lr,
               double beta1, double beta2, double eps, double weight_decay, bool decoupled, int64_t step) {
  const int64_t n = param.numel();
  if (n == 0) return;
  const double bc1 = 1 - std::pow(beta1, double(step)), bc2 = 1 - std::pow(beta2, double(step));
  dispatch_float(param.dtype(), [&](auto z) {
    using T = decltype(z);
    adam_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(ptr<T>(param), ptr<const T>(grad), ptr<T>(exp_avg),
                                                           ptr<T>(exp_avg_sq), n, lr, beta1, beta2, eps, weight_decay,
                                                           decoupled, lr / bc1, std::sqrt(bc2));
    CUDA_CHECK_LAUNCH();
  });
}

}  // namespace intl::cuda
