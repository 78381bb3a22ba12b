// CUDA kernels for batch norm (BatchNorm1d and spatial), max pooling, softmax cross-entropy and the
// optimizer steps, mirroring engine/cpu/nn.cpp formula for formula: statistics accumulate in double as the
// CPU does, so the two devices differ only by summation order. Kernels first, launchers after.
#include <algorithm>
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

// NHWC activations. A block is 32 channels (one warp reads a pixel's contiguous channels) by 8 pixels of one
// row; the grid is (row tiles, rows, images), so a thread finds its pixel and window from its block's
// coordinates with no division, once, then walks its channels 32 apart. (A flat index divided by c, w and h
// for every element costs more in integer divisions, a software sequence on a GPU, than the element's loads.)
constexpr int kPoolLanes = 32, kPoolPixels = 8;

struct PoolGrid {
  dim3 grid, block{kPoolLanes, kPoolPixels};
  PoolGrid(int64_t n, int64_t rows, int64_t cols)
      : grid(unsigned((cols + kPoolPixels - 1) / kPoolPixels), unsigned(std::min<int64_t>(rows, 65535)),
             unsigned(std::min<int64_t>(n, 65535))) {}
};

// The window's clamped range along one axis for output o: [lo, hi) of input positions.
__device__ __forceinline__ void window(int64_t o, const Pool2dArgs& a, int64_t extent, int64_t& lo, int64_t& hi) {
  const int64_t start = o * a.stride - a.pad;
  lo = start < 0 ? 0 : start;
  hi = min(start + a.k, extent);
}

// The index is the argmax's position ih * w + iw within its input plane (the first of equals; the first NaN
// wins over numbers, so that it propagates as in PyTorch), as on the CPU (engine/cpu/pool2d.cpp).
template <class T>
__global__ void maxpool_forward_kernel(const T* x, T* y, int32_t* indices, Pool2dArgs a, int64_t h_out,
                                       int64_t w_out) {
  using P = compute_t<T>;
  const int64_t ow = int64_t(blockIdx.x) * kPoolPixels + threadIdx.y;
  if (ow >= w_out) return;
  int64_t w0, w1;
  window(ow, a, a.w, w0, w1);
  for (int64_t n = blockIdx.z; n < a.n; n += gridDim.z)
    for (int64_t oh = blockIdx.y; oh < h_out; oh += gridDim.y) {
      int64_t h0, h1;
      window(oh, a, a.h, h0, h1);
      const T* plane = x + n * a.h * a.w * a.c;
      const int64_t out = ((n * h_out + oh) * w_out + ow) * a.c;
      for (int64_t c = threadIdx.x; c < a.c; c += kPoolLanes) {
        P best = P(-INFINITY);  // stays so (index -1) only for a window entirely in the padding
        int64_t arg = -1;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) {
            const P v = widen(plane[(ih * a.w + iw) * a.c + c]);
            if (arg < 0 || v > best || (v != v && best == best)) {
              best = v;
              arg = ih * a.w + iw;
            }
          }
        y[out + c] = narrow<T>(best);
        indices[out + c] = int32_t(arg);
      }
    }
}

// Gather form (no atomics, deterministic): each input element sums dy over the windows that chose it, in
// the order oh, ow, as the CPU does.
template <class T>
__global__ void maxpool_backward_kernel(const T* dy, const int32_t* indices, T* dx, Pool2dArgs a, int64_t h_out,
                                        int64_t w_out) {
  const int64_t iw = int64_t(blockIdx.x) * kPoolPixels + threadIdx.y;
  if (iw >= a.w) return;
  // Outputs whose window holds position p: ceil((p + pad - k + 1) / stride) .. floor((p + pad) / stride).
  auto outputs = [&](int64_t p, int64_t extent, int64_t& lo, int64_t& hi) {
    const int64_t first = p + a.pad - a.k + 1;
    lo = first <= 0 ? 0 : (first + a.stride - 1) / a.stride;
    hi = min((p + a.pad) / a.stride, extent - 1);
  };
  int64_t ow0, ow1;
  outputs(iw, w_out, ow0, ow1);
  for (int64_t n = blockIdx.z; n < a.n; n += gridDim.z)
    for (int64_t ih = blockIdx.y; ih < a.h; ih += gridDim.y) {
      int64_t oh0, oh1;
      outputs(ih, h_out, oh0, oh1);
      const int32_t me = int32_t(ih * a.w + iw);
      const int64_t plane = n * h_out * w_out * a.c, in = ((n * a.h + ih) * a.w + iw) * a.c;
      for (int64_t c = threadIdx.x; c < a.c; c += kPoolLanes) {
        compute_t<T> acc = 0;
        for (int64_t oh = oh0; oh <= oh1; ++oh)
          for (int64_t ow = ow0; ow <= ow1; ++ow) {
            const int64_t o = plane + (oh * w_out + ow) * a.c + c;
            if (indices[o] == me) acc += widen(dy[o]);
          }
        dx[in + c] = narrow<T>(acc);
      }
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

// The SGD step over many parameters in one launch: a list of up to kSgdTensors tensors rides in the kernel's
// arguments (about 1.5 KB of the 4 KB allowed), each tensor cut into chunks of kSgdChunk elements, one chunk a
// block. Block b works on tensor t where first_block[t] <= b < first_block[t + 1]. Each element is computed as
// the CPU computes it.
constexpr int kSgdTensors = 32;
constexpr int64_t kSgdChunk = 8 * kThreads;
template <class T> struct SgdList {
  T* p[kSgdTensors];
  const T* g[kSgdTensors];
  T* buf[kSgdTensors];  // null: no momentum
  T wd[kSgdTensors];
  int64_t n[kSgdTensors];
  int64_t first_block[kSgdTensors + 1];
  int count;
};

template <class T> __global__ void sgd_kernel(SgdList<T> list, T lr, T momentum, bool nesterov, bool first) {
  const int64_t block = blockIdx.x;
  int t = 0;
  while (t + 1 < list.count && list.first_block[t + 1] <= block) ++t;
  T* p = list.p[t];
  const T* g = list.g[t];
  T* buf = list.buf[t];
  const T wd = list.wd[t];
  const int64_t begin = (block - list.first_block[t]) * kSgdChunk;
  const int64_t end = begin + kSgdChunk < list.n[t] ? begin + kSgdChunk : list.n[t];
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
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
  if (a.n * a.c * a.h_out() * a.w_out() == 0) return;
  dispatch_storage(x.dtype(), "max_pool2d", [&](auto z) {
    using T = decltype(z);
    const PoolGrid g(a.n, a.h_out(), a.w_out());
    maxpool_forward_kernel<T><<<g.grid, g.block, 0, stream()>>>(ptr<const T>(x), ptr<T>(y), ptr<int32_t>(indices), a,
                                                                a.h_out(), a.w_out());
    CUDA_CHECK_LAUNCH();
  });
}

void maxpool2d_backward(const Pool2dArgs& a, const Tensor& dy, const Tensor& indices, const Tensor& dx) {
  if (a.n * a.c * a.h * a.w == 0) return;
  dispatch_storage(dx.dtype(), "max_pool2d backward", [&](auto z) {
    using T = decltype(z);
    const PoolGrid g(a.n, a.h, a.w);
    maxpool_backward_kernel<T><<<g.grid, g.block, 0, stream()>>>(ptr<const T>(dy), ptr<const int32_t>(indices),
                                                                 ptr<T>(dx), a, a.h_out(), a.w_out());
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

void sgd_step(const SgdArgs& args, const std::vector<SgdParam>& params) {
  // Consecutive parameters of one dtype share a launch, kSgdTensors at most (and well under 2^31 blocks).
  size_t i = 0;
  while (i < params.size()) {
    const DType dtype = params[i].param.dtype();
    dispatch_float(dtype, [&](auto z) {
      using T = decltype(z);
      SgdList<T> list{};
      list.first_block[0] = 0;
      for (; i < params.size() && params[i].param.dtype() == dtype && list.count < kSgdTensors &&
             list.first_block[list.count] < (int64_t(1) << 30);
           ++i) {
        const SgdParam& sp = params[i];
        const int64_t n = sp.param.numel();
        if (n == 0) continue;
        const int k = list.count++;
        list.p[k] = ptr<T>(sp.param);
        list.g[k] = ptr<const T>(sp.grad);
        list.buf[k] = ptr<T>(sp.momentum);
        list.wd[k] = T(sp.weight_decay);
        list.n[k] = n;
        list.first_block[k + 1] = list.first_block[k] + (n + kSgdChunk - 1) / kSgdChunk;
      }
      if (list.count == 0) return;
      sgd_kernel<T><<<unsigned(list.first_block[list.count]), kThreads, 0, stream()>>>(
          list, T(args.lr), T(args.momentum), args.nesterov, args.first_step);
      CUDA_CHECK_LAUNCH();
    });
  }
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
