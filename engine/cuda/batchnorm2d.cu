// Spatial batch-norm on NHWC activations, optionally fused with a residual add and ReLU: the CUDA side of
// engine/cpu/batchnorm2d.cpp, formula for formula. Each pass is three launches:
//   1. per-channel sums over a chunk of rows: each chunk writes its partial sums (double) to a workspace, so
//      no atomics and the same inputs give the same bits;
//   2. the coefficients: a block of 32 channels by 32 lanes adds the chunks in a fixed order and turns the sums
//      into coefficients (and the saved and running statistics, dgamma, dbeta);
//   3. an elementwise pass applies the coefficients to every value.
// Activations (x, y, residual and their gradients) are stored as T: float, double, or bfloat16 (--precision bf16
// on a GPU), read into P = compute_t<T> (float for bfloat16) and rounded once when stored; the per-channel
// tensors (gamma, beta, statistics, their gradients) are P, so a bfloat16 network keeps float32 parameters.
//
// Memory access. The passes over the activations are memory-bound, so a thread moves 16 bytes at a time: it
// owns V = 16 / sizeof(T) adjacent channels (8 in bfloat16, 4 in float) of each of its rows. A block is
// `lanes` channel groups across x (up to 32: one warp reads up to 512 contiguous bytes) by 256 / lanes rows
// across y, and the grid's y axis splits the rows into chunks. The sums issue the loads of several rows before
// adding any of them, so that enough bytes are in flight to keep the memory busy. Where the channels are not
// a multiple of V or a tensor starts off a 16-byte boundary, the same kernels run with V = 1.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "engine/cuda/kernels.h"
#include "engine/cuda/launch.cuh"

namespace intl::cuda {
namespace {

constexpr int kBlockThreads = 256;
// A thread's place: channels k0 .. k0 + V - 1 of rows first_row(), first_row() + row_step(), ...
template <int V> __device__ __forceinline__ int64_t first_channel() {
  return (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * V;
}
__device__ __forceinline__ int64_t first_row() { return int64_t(blockIdx.y) * blockDim.y + threadIdx.y; }
__device__ __forceinline__ int64_t row_step() { return int64_t(gridDim.y) * blockDim.y; }

// Forward statistics, shifted by the first row (K) so that sum (x - K)^2 does not cancel.
template <class T, int V> struct StatTerms {
  static constexpr int width = V, rows_in_flight = 4;  // rows whose loads a thread issues together
  struct Args {
    const T* x;
    int64_t c;
  };
  struct Loaded {
    Vec<T, V> x;
  };
  Args p;
  int64_t k0;
  double shift[V];
  __device__ StatTerms(const Args& a, int64_t k0_) : p(a), k0(k0_) {
    for (int j = 0; j < V; ++j) shift[j] = double(widen(p.x[k0 + j]));
  }
  __device__ Loaded load(int64_t r) const { return {load_vec<V>(p.x + r * p.c + k0)}; }
  __device__ void add(const Loaded& l, double* a, double* b) const {
    INTL_UNROLL
    for (int j = 0; j < V; ++j) {
      const double d = double(widen(l.x.v[j])) - shift[j];
      a[j] += d;
      b[j] += d * d;
    }
  }
};

// Backward sums: g = dy, zeroed where the fused ReLU's output y was not positive (y null: no ReLU);
// a = sum g, b = sum g (x - mean).
template <class T, int V> struct GradTerms {
  using P = compute_t<T>;
  static constexpr int width = V, rows_in_flight = 2;  // three tensors a row
  struct Args {
    const T* x;
    const T* y;
    const T* dy;
    const P* mean;
    int64_t c;
  };
  struct Loaded {
    Vec<T, V> x, y, dy;
  };
  Args p;
  int64_t k0;
  double mean[V];
  __device__ GradTerms(const Args& a, int64_t k0_) : p(a), k0(k0_) {
    for (int j = 0; j < V; ++j) mean[j] = double(p.mean[k0 + j]);
  }
  __device__ Loaded load(int64_t r) const {
    const int64_t i = r * p.c + k0;
    Loaded l;
    l.x = load_vec<V>(p.x + i);
    l.dy = load_vec<V>(p.dy + i);
    if (p.y) l.y = load_vec<V>(p.y + i);
    return l;
  }
  __device__ void add(const Loaded& l, double* a, double* b) const {
    INTL_UNROLL
    for (int j = 0; j < V; ++j) {
      const double g = (p.y && !(widen(l.y.v[j]) > P(0))) ? 0.0 : double(widen(l.dy.v[j]));
      a[j] += g;
      b[j] += g * (double(widen(l.x.v[j])) - mean[j]);
    }
  }
};

// partial[chunk][0][k] and partial[chunk][1][k]: the two sums over the chunk's rows for channel k, the chunk
// being blockIdx.y. The block's rows are then added in the order of threadIdx.y, channel by channel.
template <class Terms>
__global__ void channel_sums_kernel(typename Terms::Args args, int64_t rows, int64_t c, double* partial) {
  constexpr int V = Terms::width, U = Terms::rows_in_flight;
  __shared__ double sa[kBlockThreads], sb[kBlockThreads];
  const int64_t k0 = first_channel<V>();
  double a[V] = {}, b[V] = {};
  if (k0 < c) {
    const Terms terms(args, k0);
    const int64_t step = row_step();
    int64_t r = first_row();
    for (; r + (U - 1) * step < rows; r += U * step) {
      typename Terms::Loaded l[U];
      INTL_UNROLL
      for (int u = 0; u < U; ++u) l[u] = terms.load(r + u * step);
      INTL_UNROLL
      for (int u = 0; u < U; ++u) terms.add(l[u], a, b);
    }
    for (; r < rows; r += step) terms.add(terms.load(r), a, b);
  }
  const unsigned slot = threadIdx.y * blockDim.x + threadIdx.x;
  double* out = partial + int64_t(blockIdx.y) * 2 * c;
  INTL_UNROLL
  for (int j = 0; j < V; ++j) {
    sa[slot] = a[j];
    sb[slot] = b[j];
    __syncthreads();
    if (threadIdx.y == 0 && k0 < c) {
      double ta = a[j], tb = b[j];
      for (unsigned y = 1; y < blockDim.y; ++y) {
        ta += sa[y * blockDim.x + threadIdx.x];
        tb += sb[y * blockDim.x + threadIdx.x];
      }
      out[k0 + j] = ta;
      out[c + k0 + j] = tb;
    }
    __syncthreads();
  }
}

// The coefficient kernels: a block is 32 channels (x) by 32 lanes (y); lane y adds chunks y, y + 32, ... and
// lane 0 then adds the lanes in order, so a channel's total is the same on every run, and the chunks are
// read 32 at a time rather than one after another.
constexpr int kTotalLanes = 32;
__device__ bool chunk_totals(const double* partial, int chunks, int64_t c, double& a, double& b) {
  __shared__ double sa[kTotalLanes][kTotalLanes], sb[kTotalLanes][kTotalLanes];
  const int64_t k = int64_t(blockIdx.x) * kTotalLanes + threadIdx.x;
  a = 0;
  b = 0;
  if (k < c)
    for (int j = threadIdx.y; j < chunks; j += kTotalLanes) {
      a += partial[int64_t(j) * 2 * c + k];
      b += partial[int64_t(j) * 2 * c + c + k];
    }
  sa[threadIdx.y][threadIdx.x] = a;
  sb[threadIdx.y][threadIdx.x] = b;
  __syncthreads();
  if (threadIdx.y != 0 || k >= c) return false;
  for (int y = 1; y < kTotalLanes; ++y) {
    a += sa[y][threadIdx.x];
    b += sb[y][threadIdx.x];
  }
  return true;
}
const dim3 kTotalsBlock(kTotalLanes, kTotalLanes);
unsigned totals_blocks(int64_t c) { return unsigned((c + kTotalLanes - 1) / kTotalLanes); }

// Training forward: mean = K + S1 / R, var = S2 / R - (S1 / R)^2; y = x * scale + shift (+ residual, ReLU).
template <class T, class P = compute_t<T>>
__global__ void forward_train_coefficients(const double* partial, int chunks, int64_t rows, int64_t c, const T* x,
                                           const P* gamma, const P* beta, double eps, double momentum, P* scale,
                                           P* shift, P* save_mean, P* save_invstd, P* running_mean, P* running_var) {
  double s1, s2;
  if (!chunk_totals(partial, chunks, c, s1, s2)) return;
  const int64_t k = int64_t(blockIdx.x) * kTotalLanes + threadIdx.x;
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

// The elementwise passes: a thread loads its V channels' coefficients once and walks its rows.
template <class T, int V, class P = compute_t<T>>
__global__ void apply_affine_kernel(const T* x, const P* scale, const P* shift, const T* residual, bool relu, T* y,
                                    int64_t rows, int64_t c) {
  const int64_t k0 = first_channel<V>();
  if (k0 >= c) return;
  P sc[V], sh[V];
  for (int j = 0; j < V; ++j) {
    sc[j] = scale[k0 + j];
    sh[j] = shift[k0 + j];
  }
  for (int64_t r = first_row(); r < rows; r += row_step()) {
    const int64_t i = r * c + k0;
    const Vec<T, V> xv = load_vec<V>(x + i);
    Vec<T, V> rv{}, out;
    if (residual) rv = load_vec<V>(residual + i);
    INTL_UNROLL
    for (int j = 0; j < V; ++j) {
      P v = widen(xv.v[j]) * sc[j] + sh[j];
      if (residual) v += widen(rv.v[j]);
      out.v[j] = narrow<T>(relu ? (v < P(0) ? P(0) : v) : v);  // NaN passes, as std::max(v, 0) on the CPU
    }
    store_vec<V>(y + i, out);
  }
}

// With xhat = (x - mean) invstd over R values and g the gradient reaching the affine output:
// dbeta = sum g, dgamma = sum g xhat, dx = a g + b x + d with a = gamma invstd, b = -a invstd dgamma / R,
// d = -a dbeta / R - b mean. In evaluation the statistics are constants: b = d = 0.
template <class P>
__global__ void backward_coefficients(const double* partial, int chunks, int64_t rows, int64_t c, bool training,
                                      const P* gamma, const P* mean, const P* invstd_saved, const P* running_var,
                                      double eps, P* coef, P* dgamma, P* dbeta) {
  double sg = 0, sgx = 0;
  if (partial) {
    if (!chunk_totals(partial, chunks, c, sg, sgx)) return;
  } else if (threadIdx.y != 0) {
    return;
  }
  const int64_t k = int64_t(blockIdx.x) * kTotalLanes + threadIdx.x;
  if (k >= c) return;
  const double invstd = training ? double(invstd_saved[k]) : 1.0 / sqrt(double(running_var[k]) + eps);
  const double g = gamma ? double(gamma[k]) : 1.0;
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

template <class T, int V, class P = compute_t<T>>
__global__ void backward_apply_kernel(const T* x, const T* y, const T* dy, const P* coef, T* dx, T* dresidual,
                                      int64_t rows, int64_t c) {
  const int64_t k0 = first_channel<V>();
  if (k0 >= c) return;
  P a[V], b[V], d[V];
  for (int j = 0; j < V; ++j) {
    a[j] = coef[k0 + j];
    b[j] = coef[c + k0 + j];
    d[j] = coef[2 * c + k0 + j];
  }
  for (int64_t r = first_row(); r < rows; r += row_step()) {
    const int64_t i = r * c + k0;
    const Vec<T, V> dyv = load_vec<V>(dy + i);
    Vec<T, V> xv{}, yv{}, dxv{}, drv{};  // those a call does not use stay unread
    if (dx) xv = load_vec<V>(x + i);
    if (y) yv = load_vec<V>(y + i);
    INTL_UNROLL
    for (int j = 0; j < V; ++j) {
      const bool pass = !y || widen(yv.v[j]) > P(0);
      if (dx) dxv.v[j] = narrow<T>(a[j] * (pass ? widen(dyv.v[j]) : P(0)) + b[j] * widen(xv.v[j]) + d[j]);
      if (dresidual) drv.v[j] = pass ? dyv.v[j] : narrow<T>(P(0));
    }
    if (dx) store_vec<V>(dx + i, dxv);
    if (dresidual) store_vec<V>(dresidual + i, drv);
  }
}

// Launch geometry for V channels a thread: `lanes` channel groups across x, 256 / lanes rows across y, and
// the rows split into chunks (grid y). The sums aim at about 1024 blocks, a thread taking at least 16 rows;
// the elementwise passes at about 4096 blocks, a thread taking at least 4.
struct ChannelGrid {
  dim3 grid, block;
  int chunks = 1;
  ChannelGrid(int64_t rows, int64_t c, int v, int64_t target_blocks, int64_t min_rows_per_thread) {
    const int64_t groups = c / v, lanes = std::min<int64_t>(groups, 32), block_rows = kBlockThreads / lanes;
    const int64_t tiles = (groups + lanes - 1) / lanes;
    const int64_t by_blocks = std::max<int64_t>(1, target_blocks / tiles);
    const int64_t per_chunk = block_rows * min_rows_per_thread;
    const int64_t by_rows = std::max<int64_t>(1, (rows + per_chunk - 1) / per_chunk);
    chunks = int(std::min<int64_t>({by_blocks, by_rows, 65535}));
    block = dim3(unsigned(lanes), unsigned(block_rows));
    grid = dim3(unsigned(tiles), unsigned(chunks));
  }
};
ChannelGrid sums_grid(int64_t rows, int64_t c, int v) { return ChannelGrid(rows, c, v, 1024, 16); }
ChannelGrid apply_grid(int64_t rows, int64_t c, int v) { return ChannelGrid(rows, c, v, 4096, 4); }

unsigned channel_blocks(int64_t c) { return unsigned((c + kThreads - 1) / kThreads); }

// Calls f with std::integral_constant<int, V>: 16 bytes a thread where the channels and tensors allow
// (fits_vectors), else one element.
template <class T, class F> void with_width(int64_t c, std::initializer_list<const Tensor*> tensors, F&& f) {
  if (fits_vectors<T>(c, tensors)) f(std::integral_constant<int, vector_width<T>()>());
  else f(std::integral_constant<int, 1>());
}

void check_args(const BatchNorm2dArgs& a, const char* what) {
  INTL_CHECK(a.n > 0 && a.h > 0 && a.w > 0 && a.c > 0, std::string(what) + ": empty or negative shape");
  INTL_CHECK(a.c < (int64_t(1) << 31), std::string(what) + ": too many channels");
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
    with_width<T>(c, {&x, &residual, &y}, [&](auto width) {
      constexpr int V = decltype(width)::value;
      Tensor coef = Tensor::empty({2, c}, compute_dtype(x.dtype()), Device::cuda);  // scale, shift
      P* scale = ptr<P>(coef);
      P* shift = scale + c;
      if (a.training) {
        using Terms = StatTerms<T, V>;
        const ChannelGrid g = sums_grid(rows, c, V);
        Tensor partial = Tensor::empty({g.chunks, 2, c}, DType::f64, Device::cuda);
        channel_sums_kernel<Terms><<<g.grid, g.block, 0, stream()>>>(typename Terms::Args{ptr<const T>(x), c}, rows,
                                                                     c, ptr<double>(partial));
        CUDA_CHECK_LAUNCH();
        forward_train_coefficients<T><<<totals_blocks(c), kTotalsBlock, 0, stream()>>>(
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
      const ChannelGrid ag = apply_grid(rows, c, V);
      apply_affine_kernel<T, V><<<ag.grid, ag.block, 0, stream()>>>(ptr<const T>(x), scale, shift,
                                                                    ptr<const T>(residual), a.relu, ptr<T>(y), rows, c);
      CUDA_CHECK_LAUNCH();
    });
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
    const Tensor none;
    with_width<T>(c, {&x, a.relu ? &y : &none, &dy, &dx, &dresidual}, [&](auto width) {
      constexpr int V = decltype(width)::value;
      const T* yr = a.relu ? ptr<const T>(y) : nullptr;
      const P* mean = a.training ? ptr<const P>(save_mean) : ptr<const P>(running_mean);
      // The sums feed dx in training, and dgamma / dbeta in both modes.
      const bool sums = a.training ? (dx.defined() || dgamma.defined() || dbeta.defined())
                                   : (dgamma.defined() || dbeta.defined());
      const ChannelGrid g = sums_grid(rows, c, V);
      Tensor partial;
      if (sums) {
        using Terms = GradTerms<T, V>;
        partial = Tensor::empty({g.chunks, 2, c}, DType::f64, Device::cuda);
        channel_sums_kernel<Terms><<<g.grid, g.block, 0, stream()>>>(
            typename Terms::Args{ptr<const T>(x), yr, ptr<const T>(dy), mean, c}, rows, c, ptr<double>(partial));
        CUDA_CHECK_LAUNCH();
      }
      Tensor coef = Tensor::empty({3, c}, compute_dtype(x.dtype()), Device::cuda);  // a, b, d
      backward_coefficients<P><<<totals_blocks(c), kTotalsBlock, 0, stream()>>>(
          sums ? ptr<const double>(partial) : nullptr, g.chunks, rows, c, a.training, ptr<const P>(gamma), mean,
          ptr<const P>(save_invstd), ptr<const P>(running_var), a.eps, ptr<P>(coef), ptr<P>(dgamma), ptr<P>(dbeta));
      CUDA_CHECK_LAUNCH();
      if (dx.defined() || dresidual.defined()) {
        const ChannelGrid ag = apply_grid(rows, c, V);
        backward_apply_kernel<T, V><<<ag.grid, ag.block, 0, stream()>>>(
            ptr<const T>(x), yr, ptr<const T>(dy), ptr<const P>(coef), ptr<T>(dx), ptr<T>(dresidual), rows, c);
        CUDA_CHECK_LAUNCH();
      }
    });
  });
}

}  // namespace intl::cuda
