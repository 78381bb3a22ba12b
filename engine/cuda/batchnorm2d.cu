// Spatial batch-norm on NHWC activations, optionally fused with a residual add and ReLU: the CUDA side of
// engine/cpu/batchnorm2d.cpp, formula for formula. Each pass is three launches:
//   1. per-channel sums: a block is 32 channels (one warp reads 128 contiguous bytes of a row) by 8 rows, and
//      the grid's y axis splits the rows into chunks; each chunk writes its partial sums (double) to a
//      workspace, so no atomics and the same inputs give the same bits;
//   2. one thread per channel adds the chunks in order and turns the sums into coefficients (and the saved and
//      running statistics, dgamma, dbeta);
//   3. an elementwise pass applies the coefficients to every value, in the same 32-channel tiles.
// Activations (x, y, residual and their gradients) are stored as T: float, double, or bfloat16 (--precision bf16
// on a GPU), read into P = compute_t<T> (float for bfloat16) and rounded once when stored; the per-channel
// tensors (gamma, beta, statistics, their gradients) are P, so a bfloat16 network keeps float32 parameters.
#include <algorithm>

#include "engine/cuda/kernels.h"
#include "engine/cuda/launch.cuh"

namespace intl::cuda {
namespace {

constexpr int kTileChannels = 32;
constexpr int kTileRows = 8;

// Forward statistics, shifted by the first row (K) so that sum (x - K)^2 does not cancel.
template <class T> struct StatTerms {
  const T* x;
  int64_t c;
  __device__ void operator()(int64_t r, int64_t k, double& a, double& b) const {
    const double d = double(widen(x[r * c + k])) - double(widen(x[k]));
    a += d;
    b += d * d;
  }
};

// Backward sums: g = dy, zeroed where the fused ReLU's output y was not positive (y null: no ReLU);
// a = sum g, b = sum g (x - mean).
template <class T> struct GradTerms {
  using P = compute_t<T>;
  const T* x;
  const T* y;
  const T* dy;
  const P* mean;
  int64_t c;
  __device__ void operator()(int64_t r, int64_t k, double& a, double& b) const {
    const int64_t i = r * c + k;
    const double g = (y && !(widen(y[i]) > P(0))) ? 0.0 : double(widen(dy[i]));
    a += g;
    b += g * (double(widen(x[i])) - double(mean[k]));
  }
};

// Block geometry shared by every kernel here: 32 channels across x (one warp reads a row's 128 contiguous
// bytes), kTileRows rows across y, and the rows strided over the grid's y axis.
__device__ __forceinline__ int64_t tile_channel() { return int64_t(blockIdx.x) * kTileChannels + threadIdx.x; }
__device__ __forceinline__ int64_t first_row() { return int64_t(blockIdx.y) * kTileRows + threadIdx.y; }
__device__ __forceinline__ int64_t row_step() { return int64_t(gridDim.y) * kTileRows; }

// partial[chunk][0][k] and partial[chunk][1][k]: the two sums over the chunk's rows for channel k.
template <class Terms>
__global__ void channel_sums_kernel(Terms terms, int64_t rows, int64_t c, double* partial) {
  __shared__ double sa[kTileRows][kTileChannels], sb[kTileRows][kTileChannels];
  const int64_t k = tile_channel();
  double a = 0, b = 0;
  if (k < c)
    for (int64_t r = first_row(); r < rows; r += row_step()) terms(r, k, a, b);
  sa[threadIdx.y][threadIdx.x] = a;
  sb[threadIdx.y][threadIdx.x] = b;
  __syncthreads();
  if (threadIdx.y != 0 || k >= c) return;
  for (int j = 1; j < kTileRows; ++j) {
    a += sa[j][threadIdx.x];
    b += sb[j][threadIdx.x];
  }
  double* out = partial + int64_t(blockIdx.y) * 2 * c;
  out[k] = a;
  out[c + k] = b;
}

__device__ void chunk_totals(const double* partial, int chunks, int64_t c, int64_t k, double& a, double& b) {
  a = 0;
  b = 0;
  for (int j = 0; j < chunks; ++j) {
    a += partial[int64_t(j) * 2 * c + k];
    b += partial[int64_t(j) * 2 * c + c + k];
  }
}

// Training forward: mean = K + S1 / R, var = S2 / R - (S1 / R)^2; y = x * scale + shift (+ residual, ReLU).
template <class T, class P = compute_t<T>>
__global__ void forward_train_coefficients(const double* partial, int chunks, int64_t rows, int64_t c, const T* x,
                                           const P* gamma, const P* beta, double eps, double momentum, P* scale,
                                           P* shift, P* save_mean, P* save_invstd, P* running_mean, P* running_var) {
  const int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= c) return;
  double s1, s2;
  chunk_totals(partial, chunks, c, k, s1, s2);
  const double m1 = s1 / double(rows);
  const double var = fmax(0.0, s2 / double(rows) - m1 * m1);
  const double mean = double(widen(x[k])) + m1;
  const double invstd = 1.0 / sqrt(var + eps);
  const double g = gamma ? double(gamma[k]) : 1.0, bt = beta ? double(beta[k]) : 0.0;
  scale[k] = P(g * invstd);
  shift[k] = P(bt - mean * g * invstd);
  if (save_mean) save_mean[k] = P(mean);
  if (save_invstd) save_invstd[k] = P(invstd);
  if (running_mean) running_mean[k] = P((1.0 - momentum) * double(running_mean[k]) + momentum * mean);
  if (running_var)
    running_var[k] =
        P((1.0 - momentum) * double(running_var[k]) + momentum * var * double(rows) / double(rows - 1));
}

template <class T>
__global__ void forward_eval_coefficients(int64_t c, const T* gamma, const T* beta, double eps,
                                          const T* running_mean, const T* running_var, T* scale, T* shift) {
  const int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= c) return;
  const double invstd = 1.0 / sqrt(double(running_var[k]) + eps);
  const double g = gamma ? double(gamma[k]) : 1.0, bt = beta ? double(beta[k]) : 0.0;
  scale[k] = T(g * invstd);
  shift[k] = T(bt - double(running_mean[k]) * g * invstd);
}

// The elementwise passes use the same geometry, so a thread keeps its channel's coefficients in registers and
// no index is divided.
template <class T, class P = compute_t<T>>
__global__ void apply_affine_kernel(const T* x, const P* scale, const P* shift, const T* residual, bool relu, T* y,
                                    int64_t rows, int64_t c) {
  const int64_t k = tile_channel();
  if (k >= c) return;
  const P sc = scale[k], sh = shift[k];
  for (int64_t r = first_row(); r < rows; r += row_step()) {
    const int64_t i = r * c + k;
    P v = widen(x[i]) * sc + sh;
    if (residual) v += widen(residual[i]);
    y[i] = narrow<T>(relu ? (v < P(0) ? P(0) : v) : v);  // NaN passes, as std::max(v, 0) on the CPU
  }
}

// With xhat = (x - mean) invstd over R values and g the gradient reaching the affine output:
// dbeta = sum g, dgamma = sum g xhat, dx = a g + b x + d with a = gamma invstd, b = -a invstd dgamma / R,
// d = -a dbeta / R - b mean. In evaluation the statistics are constants: b = d = 0.
template <class P>
__global__ void backward_coefficients(const double* partial, int chunks, int64_t rows, int64_t c, bool training,
                                      const P* gamma, const P* mean, const P* invstd_saved, const P* running_var,
                                      double eps, P* coef, P* dgamma, P* dbeta) {
  const int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= c) return;
  const double invstd = training ? double(invstd_saved[k]) : 1.0 / sqrt(double(running_var[k]) + eps);
  const double g = gamma ? double(gamma[k]) : 1.0;
  double sg = 0, sgx = 0;
  if (partial) chunk_totals(partial, chunks, c, k, sg, sgx);
  const double dg = sgx * invstd, db = sg;
  if (dgamma) dgamma[k] = P(dg);
  if (dbeta) dbeta[k] = P(db);
  const double a = g * invstd;
  const double b = training ? -a * invstd * dg / double(rows) : 0.0;
  const double d = training ? -a * db / double(rows) - b * double(mean[k]) : 0.0;
  coef[k] = P(a);
  coef[c + k] = P(b);
  coef[2 * c + k] = P(d);
}

template <class T, class P = compute_t<T>>
__global__ void backward_apply_kernel(const T* x, const T* y, const T* dy, const P* coef, T* dx, T* dresidual,
                                      int64_t rows, int64_t c) {
  const int64_t k = tile_channel();
  if (k >= c) return;
  const P a = coef[k], b = coef[c + k], d = coef[2 * c + k];
  for (int64_t r = first_row(); r < rows; r += row_step()) {
    const int64_t i = r * c + k;
    const bool pass = !y || widen(y[i]) > P(0);
    if (dx) dx[i] = narrow<T>(a * (pass ? widen(dy[i]) : P(0)) + b * widen(x[i]) + d);
    if (dresidual) dresidual[i] = pass ? dy[i] : narrow<T>(P(0));
  }
}

// Launch geometry: tiles of 32 channels across x, chunks of rows across y. The sums aim at about 1024 blocks
// with at least 64 rows per chunk (a thread sums several rows); the elementwise passes at about 8192 blocks.
struct ChannelGrid {
  dim3 grid, block{kTileChannels, kTileRows};
  int chunks = 1;
  ChannelGrid(int64_t rows, int64_t c, int64_t target_blocks, int64_t min_rows_per_chunk) {
    const int64_t tiles = (c + kTileChannels - 1) / kTileChannels;
    const int64_t by_blocks = std::max<int64_t>(1, target_blocks / tiles);
    const int64_t by_rows = std::max<int64_t>(1, (rows + min_rows_per_chunk - 1) / min_rows_per_chunk);
    chunks = int(std::min<int64_t>({by_blocks, by_rows, 65535}));
    grid = dim3(unsigned(tiles), unsigned(chunks));
  }
};
ChannelGrid sums_grid(int64_t rows, int64_t c) { return ChannelGrid(rows, c, 1024, 64); }
ChannelGrid apply_grid(int64_t rows, int64_t c) { return ChannelGrid(rows, c, 8192, kTileRows); }

unsigned channel_blocks(int64_t c) { return unsigned((c + kThreads - 1) / kThreads); }

void check_args(const BatchNorm2dArgs& a, const char* what) {
  INTL_CHECK(a.n > 0 && a.h > 0 && a.w > 0 && a.c > 0, std::string(what) + ": empty or negative shape");
  INTL_CHECK(a.c <= (int64_t(1) << 31) / kTileChannels, std::string(what) + ": too many channels");
}

}  // namespace

void batchnorm2d_forward(const BatchNorm2dArgs& a, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& residual, const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd,
                         const Tensor& running_mean, const Tensor& running_var) {
  check_args(a, "batch_norm_2d");
  const int64_t c = a.c, rows = a.n * a.h * a.w;
  INTL_CHECK(!a.training || rows > 1, "batch_norm_2d in training needs more than one value per channel");
  dispatch_storage(x.dtype(), "batch_norm_2d", [&](auto z) {
    using T = decltype(z);
    using P = compute_t<T>;
    Tensor coef = Tensor::empty({2, c}, compute_dtype(x.dtype()), Device::cuda);  // scale, shift
    P* scale = ptr<P>(coef);
    P* shift = scale + c;
    if (a.training) {
      const ChannelGrid g = sums_grid(rows, c);
      Tensor partial = Tensor::empty({g.chunks, 2, c}, DType::f64, Device::cuda);
      channel_sums_kernel<<<g.grid, g.block, 0, stream()>>>(StatTerms<T>{ptr<const T>(x), c}, rows, c,
                                                            ptr<double>(partial));
      CUDA_CHECK_LAUNCH();
      forward_train_coefficients<T><<<channel_blocks(c), kThreads, 0, stream()>>>(
          ptr<const double>(partial), g.chunks, rows, c, ptr<const T>(x), ptr<const P>(gamma), ptr<const P>(beta),
          a.eps, a.momentum, scale, shift, ptr<P>(save_mean), ptr<P>(save_invstd), ptr<P>(running_mean),
          ptr<P>(running_var));
      CUDA_CHECK_LAUNCH();
    } else {
      forward_eval_coefficients<P><<<channel_blocks(c), kThreads, 0, stream()>>>(
          c, ptr<const P>(gamma), ptr<const P>(beta), a.eps, ptr<const P>(running_mean),
          ptr<const P>(running_var), scale, shift);
      CUDA_CHECK_LAUNCH();
    }
    const ChannelGrid ag = apply_grid(rows, c);
    apply_affine_kernel<T><<<ag.grid, ag.block, 0, stream()>>>(ptr<const T>(x), scale, shift, ptr<const T>(residual),
                                                               a.relu, ptr<T>(y), rows, c);
    CUDA_CHECK_LAUNCH();
  });
}

void batchnorm2d_backward(const BatchNorm2dArgs& a, const Tensor& x, const Tensor& y, const Tensor& dy,
                          const Tensor& gamma, const Tensor& save_mean, const Tensor& save_invstd,
                          const Tensor& running_mean, const Tensor& running_var, const Tensor& dx,
                          const Tensor& dgamma, const Tensor& dbeta, const Tensor& dresidual) {
  check_args(a, "batch_norm_2d backward");
  const int64_t c = a.c, rows = a.n * a.h * a.w;
  dispatch_storage(x.dtype(), "batch_norm_2d backward", [&](auto z) {
    using T = decltype(z);
    using P = compute_t<T>;
    const T* yr = a.relu ? ptr<const T>(y) : nullptr;
    const P* mean = a.training ? ptr<const P>(save_mean) : ptr<const P>(running_mean);
    // The sums feed dx in training, and dgamma / dbeta in both modes.
    const bool sums = a.training ? (dx.defined() || dgamma.defined() || dbeta.defined())
                                 : (dgamma.defined() || dbeta.defined());
    const ChannelGrid g = sums_grid(rows, c);
    Tensor partial;
    if (sums) {
      partial = Tensor::empty({g.chunks, 2, c}, DType::f64, Device::cuda);
      channel_sums_kernel<<<g.grid, g.block, 0, stream()>>>(
          GradTerms<T>{ptr<const T>(x), yr, ptr<const T>(dy), mean, c}, rows, c, ptr<double>(partial));
      CUDA_CHECK_LAUNCH();
    }
    Tensor coef = Tensor::empty({3, c}, compute_dtype(x.dtype()), Device::cuda);  // a, b, d
    backward_coefficients<P><<<channel_blocks(c), kThreads, 0, stream()>>>(
        sums ? ptr<const double>(partial) : nullptr, g.chunks, rows, c, a.training, ptr<const P>(gamma), mean,
        ptr<const P>(save_invstd), ptr<const P>(running_var), a.eps, ptr<P>(coef), ptr<P>(dgamma), ptr<P>(dbeta));
    CUDA_CHECK_LAUNCH();
    if (dx.defined() || dresidual.defined()) {
      const ChannelGrid ag = apply_grid(rows, c);
      backward_apply_kernel<T><<<ag.grid, ag.block, 0, stream()>>>(ptr<const T>(x), yr, ptr<const T>(dy),
                                                                   ptr<const P>(coef), ptr<T>(dx), ptr<T>(dresidual),
                                                                   rows, c);
      CUDA_CHECK_LAUNCH();
    }
  });
}

}  // namespace intl::cuda
