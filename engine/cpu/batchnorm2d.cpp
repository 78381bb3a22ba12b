// Spatial batch-norm on NHWC activations, optionally fused with a residual add and ReLU: float32 kernels that
// stream rows of channels (unit stride, vectorised over c, rows split across threads) and the float64 reference.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/cpu/conv_kernels.h"
#include "engine/error.h"

namespace intl::cpu {
namespace {

constexpr int64_t kBlockRows = 64;  // rows summed in float before the block total is added in double

// Per-thread partial sums, grown once and reused.
struct Partials {
  std::vector<double> sums;  // threads x 2 x c
  std::vector<float> block;  // threads x 2 x c
  int threads = 1;
  void prepare(int c) {
    threads = omp_get_max_threads();
    const size_t need = size_t(threads) * 2 * c;
    if (sums.size() < need) sums.resize(need);
    if (block.size() < need) block.resize(need);
  }
  double* sum_of(int t, int c) { return sums.data() + size_t(t) * 2 * c; }
};

Partials& partials() {
  thread_local Partials p;
  return p;
}

void check_shape(const NhwcShape& s, const char* what) {
  INTL_CHECK(s.n > 0 && s.h > 0 && s.w > 0 && s.c > 0,
             std::string(what) + ": invalid shape (n " + std::to_string(s.n) + ", h " + std::to_string(s.h) + ", w " +
                 std::to_string(s.w) + ", c " + std::to_string(s.c) + ")");
}

// For every channel: a[c] = sum_r f(r, c, &b) and b[c] likewise, where row_terms(r, c) returns the pair. Rows are
// split across threads; each thread sums blocks of kBlockRows rows in float and the block totals in double.
template <class RowTerms>
void channel_sums(const NhwcShape& s, RowTerms row_terms, double* first, double* second) {
  Partials& p = partials();
  const int c = s.c;
  p.prepare(c);
  const int64_t rows = s.rows();
  // The region may get fewer threads than asked (OMP_DYNAMIC, or a call from inside another parallel region):
  // only the slots of the threads that ran hold this call's sums.
  int ran = 1;
#pragma omp parallel num_threads(p.threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    if (t == 0) ran = nt;
    double* tot = p.sum_of(t, c);
    float* blk = p.block.data() + size_t(t) * 2 * c;
    std::fill(tot, tot + 2 * c, 0.0);
    const int64_t begin = rows * t / nt, end = rows * (t + 1) / nt;
    for (int64_t r0 = begin; r0 < end; r0 += kBlockRows) {
      std::fill(blk, blk + 2 * c, 0.f);
      const int64_t r1 = std::min(end, r0 + kBlockRows);
      for (int64_t r = r0; r < r1; ++r) row_terms(r, blk, blk + c);
      for (int k = 0; k < 2 * c; ++k) tot[k] += blk[k];
    }
  }
  for (int k = 0; k < c; ++k) {
    double a = 0, b = 0;
    for (int t = 0; t < ran; ++t) {
      a += p.sum_of(t, c)[k];
      b += p.sum_of(t, c)[c + k];
    }
    first[k] = a;
    second[k] = b;
  }
}

// The two sums every batch-norm backward needs, per channel: sg = sum g and sgx = sum g (x - mean), where g is
// dy, zeroed where a fused ReLU's output y was not positive (y null: no ReLU).
void gradient_sums(const NhwcShape& s, const float* x, const float* y, const float* dy, const float* mean, double* sg,
                   double* sgx) {
  const int c = s.c;
  channel_sums(
      s,
      [&](int64_t r, float* a, float* b) {
        const float* xr = x + r * c;
        const float* gr = dy + r * c;
        const float* yr = y ? y + r * c : nullptr;
#pragma omp simd
        for (int k = 0; k < c; ++k) {
          const float g = (yr && !(yr[k] > 0.f)) ? 0.f : gr[k];
          a[k] += g;
          b[k] += g * (xr[k] - mean[k]);
        }
      },
      sg, sgx);
}

// y = act(x * scale + shift + residual) row by row.
void apply_affine(const NhwcShape& s, const float* x, const float* scale, const float* shift, const float* residual,
                  bool relu, float* y) {
  const int c = s.c;
  const int64_t rows = s.rows();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * c;
    float* yr = y + r * c;
    const float* rr = residual ? residual + r * c : nullptr;
#pragma omp simd
    for (int k = 0; k < c; ++k) {
      float v = xr[k] * scale[k] + shift[k];
      if (rr) v += rr[k];
      yr[k] = relu ? std::max(v, 0.f) : v;
    }
  }
}

// Per-channel scratch of the calling thread: 2 x c double sums, then floats (scale and shift, or the backward
// coefficients). Grown once, so a call allocates nothing.
struct ChannelScratch {
  std::vector<double> sums;
  std::vector<float> coef;
};
ChannelScratch& channel_scratch(int c) {
  thread_local ChannelScratch v;
  if (v.sums.size() < 2 * size_t(c)) v.sums.resize(2 * size_t(c));
  if (v.coef.size() < 4 * size_t(c)) v.coef.resize(4 * size_t(c));
  return v;
}

inline float write_or_add(float fresh, float old, float grad_beta) { return grad_beta == 0.f ? fresh : fresh + grad_beta * old; }

// The backward shared by training and evaluation: with g = dy masked by the fused ReLU,
// dx = a * g + b * x + d per channel, dresidual = g; dgamma and dbeta from the channel sums.
void backward_apply(const NhwcShape& s, const float* x, const float* y, const float* dy, const float* a,
                    const float* b, const float* d, float* dx, float* dresidual, float grad_beta) {
  const int c = s.c;
  const int64_t rows = s.rows();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * c;
    const float* gr = dy + r * c;
    const float* yr = y ? y + r * c : nullptr;
    float* dxr = dx ? dx + r * c : nullptr;
    float* drr = dresidual ? dresidual + r * c : nullptr;
#pragma omp simd
    for (int k = 0; k < c; ++k) {
      const float g = (yr && !(yr[k] > 0.f)) ? 0.f : gr[k];
      if (dxr) dxr[k] = write_or_add(a[k] * g + b[k] * xr[k] + d[k], dxr[k], grad_beta);
      if (drr) drr[k] = write_or_add(g, drr[k], grad_beta);
    }
  }
}

}  // namespace

// Statistics in one pass over x, shifted by the first row (K) so that sum (x - K)^2 does not cancel:
// mean = K + S1 / R, var = S2 / R - (S1 / R)^2.
void batchnorm2d_forward_train(const NhwcShape& s, const float* x, const float* gamma, const float* beta,
                               const float* residual, bool relu, float eps, float momentum, float* y,
                               float* save_mean, float* save_invstd, float* running_mean, float* running_var) {
  check_shape(s, "batchnorm2d_forward_train");
  const int c = s.c;
  const int64_t rows = s.rows();
  INTL_CHECK(rows > 1, "batchnorm2d_forward_train needs more than one value per channel (n * h * w = 1)");
  ChannelScratch& scratch = channel_scratch(c);
  float* shift_k = scratch.coef.data();
  std::copy(x, x + c, shift_k);
  double *s1 = scratch.sums.data(), *s2 = s1 + c;
  channel_sums(
      s,
      [&](int64_t r, float* a, float* b) {
        const float* xr = x + r * c;
#pragma omp simd
        for (int k = 0; k < c; ++k) {
          const float d = xr[k] - shift_k[k];
          a[k] += d;
          b[k] += d * d;
        }
      },
      s1, s2);
  float* scale = shift_k + c;
  float* shift = shift_k + 2 * c;
  for (int k = 0; k < c; ++k) {
    const double m1 = s1[k] / double(rows);
    const double var = std::max(0.0, s2[k] / double(rows) - m1 * m1);
    const double mean = double(shift_k[k]) + m1;
    const double invstd = 1.0 / std::sqrt(var + double(eps));
    const double g = gamma ? gamma[k] : 1.0, bt = beta ? beta[k] : 0.0;
    scale[k] = float(g * invstd);
    shift[k] = float(bt - mean * g * invstd);
    if (save_mean) save_mean[k] = float(mean);
    if (save_invstd) save_invstd[k] = float(invstd);
    if (running_mean) running_mean[k] = float((1.0 - momentum) * running_mean[k] + momentum * mean);
    if (running_var)
      running_var[k] =
          float((1.0 - momentum) * running_var[k] + momentum * var * double(rows) / double(rows - 1));
  }
  apply_affine(s, x, scale, shift, residual, relu, y);
}

void batchnorm2d_forward_eval(const NhwcShape& s, const float* x, const float* gamma, const float* beta,
                              const float* residual, bool relu, float eps, const float* running_mean,
                              const float* running_var, float* y) {
  check_shape(s, "batchnorm2d_forward_eval");
  const int c = s.c;
  float* scale = channel_scratch(c).coef.data();
  float* shift = scale + c;
  for (int k = 0; k < c; ++k) {
    const double invstd = 1.0 / std::sqrt(double(running_var[k]) + double(eps));
    const double g = gamma ? gamma[k] : 1.0, bt = beta ? beta[k] : 0.0;
    scale[k] = float(g * invstd);
    shift[k] = float(bt - running_mean[k] * g * invstd);
  }
  apply_affine(s, x, scale, shift, residual, relu, y);
}

// With xhat = (x - mean) * invstd over R values of a channel and g the gradient reaching the affine output:
// dbeta = sum g, dgamma = sum g xhat, dx = gamma invstd (g - dbeta / R - xhat dgamma / R), which is
// a g + b x + d with a = gamma invstd, b = -a invstd dgamma / R, d = -a dbeta / R - b mean.
void batchnorm2d_backward_train(const NhwcShape& s, const float* x, const float* y, const float* dy,
                                const float* gamma, const float* save_mean, const float* save_invstd, float* dx,
                                float* dgamma, float* dbeta, float* dresidual, float grad_beta) {
  check_shape(s, "batchnorm2d_backward_train");
  const int c = s.c;
  const int64_t rows = s.rows();
  ChannelScratch& scratch = channel_scratch(c);
  double *sg = scratch.sums.data(), *sgx = sg + c;
  gradient_sums(s, x, y, dy, save_mean, sg, sgx);
  float *a = scratch.coef.data(), *b = a + c, *d = b + c;
  for (int k = 0; k < c; ++k) {
    const double invstd = save_invstd[k], g = gamma ? gamma[k] : 1.0;
    const double dg = sgx[k] * invstd, db = sg[k];
    if (dgamma) dgamma[k] = write_or_add(float(dg), dgamma[k], grad_beta);
    if (dbeta) dbeta[k] = write_or_add(float(db), dbeta[k], grad_beta);
    const double ak = g * invstd, bk = -ak * invstd * dg / double(rows);
    a[k] = float(ak);
    b[k] = float(bk);
    d[k] = float(-ak * db / double(rows) - bk * save_mean[k]);
  }
  if (dx || dresidual) backward_apply(s, x, y, dy, a, b, d, dx, dresidual, grad_beta);
}

void batchnorm2d_backward_eval(const NhwcShape& s, const float* x, const float* y, const float* dy,
                               const float* gamma, const float* running_mean, const float* running_var, float eps,
                               float* dx, float* dgamma, float* dbeta, float* dresidual, float grad_beta) {
  check_shape(s, "batchnorm2d_backward_eval");
  const int c = s.c;
  ChannelScratch& scratch = channel_scratch(c);
  if (dgamma || dbeta) {
    double *sg = scratch.sums.data(), *sgx = sg + c;
    gradient_sums(s, x, y, dy, running_mean, sg, sgx);
    for (int k = 0; k < c; ++k) {
      const double invstd = 1.0 / std::sqrt(double(running_var[k]) + double(eps));
      if (dgamma) dgamma[k] = write_or_add(float(sgx[k] * invstd), dgamma[k], grad_beta);
      if (dbeta) dbeta[k] = write_or_add(float(sg[k]), dbeta[k], grad_beta);
    }
  }
  float *a = scratch.coef.data(), *b = a + c, *d = b + c;
  for (int k = 0; k < c; ++k) {
    a[k] = float((gamma ? gamma[k] : 1.0) / std::sqrt(double(running_var[k]) + double(eps)));
    b[k] = 0.f;
    d[k] = 0.f;
  }
  if (dx || dresidual) backward_apply(s, x, y, dy, a, b, d, dx, dresidual, grad_beta);
}

// ---------------------------------------------------------------------------------------------------------------
// References: one channel at a time, two passes, everything in double.

namespace {
void set_or_add(double& out, double fresh, double grad_beta) { out = grad_beta == 0.0 ? fresh : fresh + grad_beta * out; }

double activate(double v, bool relu) { return relu ? std::max(v, 0.0) : v; }

// g = dy where the fused ReLU passed (y > 0), else 0.
double masked(const double* y, const double* dy, int64_t i) { return (y && !(y[i] > 0.0)) ? 0.0 : dy[i]; }
}  // namespace

void batchnorm2d_forward_train_reference(const NhwcShape& s, const double* x, const double* gamma,
                                         const double* beta, const double* residual, bool relu, double eps,
                                         double momentum, double* y, double* save_mean, double* save_invstd,
                                         double* running_mean, double* running_var) {
  const int64_t rows = s.rows();
  for (int k = 0; k < s.c; ++k) {
    double sum = 0;
    for (int64_t r = 0; r < rows; ++r) sum += x[r * s.c + k];
    const double mean = sum / double(rows);
    double sq = 0;
    for (int64_t r = 0; r < rows; ++r) sq += (x[r * s.c + k] - mean) * (x[r * s.c + k] - mean);
    const double var = sq / double(rows), invstd = 1.0 / std::sqrt(var + eps);
    const double g = gamma ? gamma[k] : 1.0, b = beta ? beta[k] : 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = r * s.c + k;
      y[i] = activate((x[i] - mean) * invstd * g + b + (residual ? residual[i] : 0.0), relu);
    }
    if (save_mean) save_mean[k] = mean;
    if (save_invstd) save_invstd[k] = invstd;
    if (running_mean) running_mean[k] = (1 - momentum) * running_mean[k] + momentum * mean;
    if (running_var) running_var[k] = (1 - momentum) * running_var[k] + momentum * sq / double(rows - 1);
  }
}

void batchnorm2d_forward_eval_reference(const NhwcShape& s, const double* x, const double* gamma,
                                        const double* beta, const double* residual, bool relu, double eps,
                                        const double* running_mean, const double* running_var, double* y) {
  const int64_t rows = s.rows();
  for (int k = 0; k < s.c; ++k) {
    const double invstd = 1.0 / std::sqrt(running_var[k] + eps);
    const double g = gamma ? gamma[k] : 1.0, b = beta ? beta[k] : 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = r * s.c + k;
      y[i] = activate((x[i] - running_mean[k]) * invstd * g + b + (residual ? residual[i] : 0.0), relu);
    }
  }
}

void batchnorm2d_backward_train_reference(const NhwcShape& s, const double* x, const double* y,
                                          const double* dy, const double* gamma, const double* save_mean,
                                          const double* save_invstd, double* dx, double* dgamma, double* dbeta,
                                          double* dresidual, double grad_beta) {
  const int64_t rows = s.rows();
  for (int k = 0; k < s.c; ++k) {
    const double mean = save_mean[k], invstd = save_invstd[k], g = gamma ? gamma[k] : 1.0;
    double sg = 0, sgxhat = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = r * s.c + k;
      sg += masked(y, dy, i);
      sgxhat += masked(y, dy, i) * (x[i] - mean) * invstd;
    }
    if (dgamma) set_or_add(dgamma[k], sgxhat, grad_beta);
    if (dbeta) set_or_add(dbeta[k], sg, grad_beta);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = r * s.c + k;
      const double xhat = (x[i] - mean) * invstd;
      if (dx) set_or_add(dx[i], g * invstd * (masked(y, dy, i) - sg / rows - xhat * sgxhat / rows), grad_beta);
      if (dresidual) set_or_add(dresidual[i], masked(y, dy, i), grad_beta);
    }
  }
}

void batchnorm2d_backward_eval_reference(const NhwcShape& s, const double* x, const double* y,
                                         const double* dy, const double* gamma, const double* running_mean,
                                         const double* running_var, double eps, double* dx, double* dgamma,
                                         double* dbeta, double* dresidual, double grad_beta) {
  const int64_t rows = s.rows();
  for (int k = 0; k < s.c; ++k) {
    const double invstd = 1.0 / std::sqrt(running_var[k] + eps), g = gamma ? gamma[k] : 1.0;
    double sg = 0, sgxhat = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = r * s.c + k;
      sg += masked(y, dy, i);
      sgxhat += masked(y, dy, i) * (x[i] - running_mean[k]) * invstd;
      if (dx) set_or_add(dx[i], g * invstd * masked(y, dy, i), grad_beta);
      if (dresidual) set_or_add(dresidual[i], masked(y, dy, i), grad_beta);
    }
    if (dgamma) set_or_add(dgamma[k], sgxhat, grad_beta);
    if (dbeta) set_or_add(dbeta[k], sg, grad_beta);
  }
}

}  // namespace intl::cpu
