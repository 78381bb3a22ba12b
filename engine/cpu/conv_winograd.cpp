// Winograd F(4x4, 3x3) on NHWC float32: transforms over blocks of 8 channels (one AVX2 register), 36 sgemms.
#include "engine/cpu/conv_winograd.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace intl::cpu::winograd {
namespace {

constexpr int kOut = 4;         // outputs per tile side
constexpr int kIn = 6;          // inputs per tile side
constexpr int kPositions = 36;  // kIn * kIn
constexpr int kLanes = 8;       // channels transformed together
// Scratch per chunk of images: their transformed inputs and products (36 x tiles x (c_in + c_out)), about 8 MB
// so that a chunk stays in the last-level cache between its transforms and its sgemms; at least the transformed
// weight's size, as every chunk reads the whole of it (37.7 MB for 512 x 512 channels).
constexpr int64_t kScratchFloats = int64_t(1) << 21;

// The three 1-D transforms on `kLanes` channels at once; element k of a row is at p + k * stride.
// Input: B^T d, points 0, 1, -1, 2, -2 and infinity.
inline void input_1d(const float* d, int64_t ds, float* t, int64_t ts) {
#pragma omp simd
  for (int c = 0; c < kLanes; ++c) {
    const float d0 = d[c], d1 = d[ds + c], d2 = d[2 * ds + c], d3 = d[3 * ds + c], d4 = d[4 * ds + c],
                d5 = d[5 * ds + c];
    t[c] = 4.f * d0 - 5.f * d2 + d4;
    t[ts + c] = -4.f * (d1 + d2) + d3 + d4;
    t[2 * ts + c] = 4.f * (d1 - d2) - d3 + d4;
    t[3 * ts + c] = 2.f * (d3 - d1) - d2 + d4;
    t[4 * ts + c] = 2.f * (d1 - d3) - d2 + d4;
    t[5 * ts + c] = 4.f * d1 - 5.f * d3 + d5;
  }
}

// Output: A^T m.
inline void output_1d(const float* m, int64_t ms, float* o, int64_t os) {
#pragma omp simd
  for (int c = 0; c < kLanes; ++c) {
    const float m0 = m[c], m1 = m[ms + c], m2 = m[2 * ms + c], m3 = m[3 * ms + c], m4 = m[4 * ms + c],
                m5 = m[5 * ms + c];
    const float a = m1 + m2, b = m1 - m2, p = m3 + m4, q = m3 - m4;
    o[c] = m0 + a + p;
    o[os + c] = b + 2.f * q;
    o[2 * os + c] = a + 4.f * p;
    o[3 * os + c] = b + 8.f * q + m5;
  }
}

// Filter: G g (the sixths, twelfths and twenty-fourths as products: no division in the loop).
inline void filter_1d(const float* g, int64_t gs, float* u, int64_t us) {
  constexpr float sixth = 1.f / 6, twelfth = 1.f / 12, twenty_fourth = 1.f / 24;
#pragma omp simd
  for (int c = 0; c < kLanes; ++c) {
    const float g0 = g[c], g1 = g[gs + c], g2 = g[2 * gs + c];
    const float even = g0 * twenty_fourth + g2 * sixth, odd = g1 * twelfth;
    u[c] = g0 * 0.25f;
    u[us + c] = -(g0 + g1 + g2) * sixth;
    u[2 * us + c] = -(g0 - g1 + g2) * sixth;
    u[3 * us + c] = even + odd;
    u[4 * us + c] = even - odd;
    u[5 * us + c] = g2;
  }
}

// Output gradient: A e, the 4 outputs of a tile row to its 6 transformed positions (the transpose of output_1d).
inline void gradient_1d(const float* e, int64_t es, float* t, int64_t ts) {
#pragma omp simd
  for (int c = 0; c < kLanes; ++c) {
    const float e0 = e[c], e1 = e[es + c], e2 = e[2 * es + c], e3 = e[3 * es + c];
    const float even = e0 + e2, odd = e1 + e3, even4 = e0 + 4.f * e2, odd2 = 2.f * e1 + 8.f * e3;
    t[c] = e0;
    t[ts + c] = even + odd;
    t[2 * ts + c] = even - odd;
    t[3 * ts + c] = even4 + odd2;
    t[4 * ts + c] = even4 - odd2;
    t[5 * ts + c] = e3;
  }
}

// Filter gradient: G^T w, 6 transformed positions back to 3 taps (the transpose of filter_1d).
inline void filter_gradient_1d(const float* w, int64_t ws, float* g, int64_t gs) {
  constexpr float sixth = 1.f / 6, twelfth = 1.f / 12, twenty_fourth = 1.f / 24;
#pragma omp simd
  for (int c = 0; c < kLanes; ++c) {
    const float w0 = w[c], w1 = w[ws + c], w2 = w[2 * ws + c], w3 = w[3 * ws + c], w4 = w[4 * ws + c],
                w5 = w[5 * ws + c];
    const float plus = w1 + w2, minus = w2 - w1, sum34 = w3 + w4, diff34 = w3 - w4;
    g[c] = w0 * 0.25f - plus * sixth + sum34 * twenty_fourth;
    g[gs + c] = minus * sixth + diff34 * twelfth;
    g[2 * gs + c] = (sum34 - plus) * sixth + w5;
  }
}

struct Tiling {
  int rows, cols;  // tiles per image side
  int64_t per_image() const { return int64_t(rows) * cols; }
};

Tiling tiling(const Conv2dShape& s) { return {(s.h_out() + kOut - 1) / kOut, (s.w_out() + kOut - 1) / kOut}; }

int images_per_chunk(const Conv2dShape& s) {
  const int64_t per_image = kPositions * tiling(s).per_image() * (s.c_in + s.c_out);
  const int64_t budget = std::max<int64_t>(kScratchFloats, int64_t(weight_floats(s)));
  return int(std::clamp<int64_t>(budget / per_image, 1, s.n));
}

// Tiles are numbered across the batch, image after image, each image's row after row. A tile's 36 transformed
// positions lie together, out[t][p][c]: position p of every tile is then a matrix with a row stride of 36 c, as
// the sgemms take it. (Position-major, out[p][t][c], a tile's transform wrote 36 streams a block of tiles apart,
// 16 KB for 64 tiles of 64 channels, which fell into the same L1 sets: 0.87 of that form's time for the
// forward of a 64-channel layer, 0.95 for 128 to 512; both forms alternating in one process, best of 30 calls,
// batch 32, AVX2, 2 threads.)
// The transforms into the Winograd domain share one loop: out[t][p][c] for the `tiles` tiles from `first` = the
// k x k patch of each tile of an NHWC image (h, w, c) whose tile (row, col) starts at (4 row - pad, 4 col - pad),
// zero outside the image, transformed to 6 x 6 by `to6` (a compile-time argument, so inlined) along its
// columns, then its rows. A patch inside the image is read where it lies and one that crosses an edge from a
// copy with its zeros; the rows' transforms write the tile's positions directly. Shared among the threads of a
// new team, or run by the caller alone inside a parallel region.
using Transform1d = void (*)(const float*, int64_t, float*, int64_t);

template <int k, Transform1d to6>
void transform_patches(const Conv2dShape& s, const float* image, int h, int w, int c, int pad, int64_t first,
                       int64_t tiles, float* out) {
  const Tiling tl = tiling(s);
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
  for (int64_t t = 0; t < tiles; ++t) {
    const int n = int((first + t) / tl.per_image()), r = int((first + t) % tl.per_image());
    const int h0 = (r / tl.cols) * kOut - pad, w0 = (r % tl.cols) * kOut - pad;
    const bool inside = h0 >= 0 && w0 >= 0 && h0 + k <= h && w0 + k <= w;
    const float* corner = inside ? image + ((int64_t(n) * h + h0) * w + w0) * c : nullptr;
    float* tile = out + t * kPositions * c;
    for (int c0 = 0; c0 < c; c0 += kLanes) {
      alignas(32) float d[k][k][kLanes], m[kIn][k][kLanes];
      const float* patch = d[0][0];  // element (i, j) at patch + i * row + j * col
      int64_t row = k * kLanes, col = kLanes;
      if (inside) {
        patch = corner + c0;
        row = int64_t(w) * c;
        col = c;
      } else {
        for (int i = 0; i < k; ++i)
          for (int j = 0; j < k; ++j) {
            const int y = h0 + i, x = w0 + j;
            if (y < 0 || y >= h || x < 0 || x >= w) {
              std::fill(d[i][j], d[i][j] + kLanes, 0.f);
            } else {
              const float* in = image + ((int64_t(n) * h + y) * w + x) * c + c0;
              std::copy(in, in + kLanes, d[i][j]);
            }
          }
      }
      for (int j = 0; j < k; ++j) to6(patch + j * col, row, m[0][j], k * kLanes);  // columns
      for (int i = 0; i < kIn; ++i) to6(m[i][0], kLanes, tile + i * kIn * c + c0, c);  // rows: positions 6 i + j
    }
  }
}

// v: each tile's 6x6 input patch as B^T d B.
void transform_inputs(const Conv2dShape& s, const float* x, int64_t first, int64_t tiles, float* v) {
  transform_patches<kIn, input_1d>(s, x, s.h, s.w, s.c_in, s.pad, first, tiles, v);
}

// e: each tile's 4x4 output gradient (zero past the image's edge) as A dy A^T.
void transform_output_gradients(const Conv2dShape& s, const float* dy, int64_t first, int64_t tiles, float* e) {
  transform_patches<kOut, gradient_1d>(s, dy, s.h_out(), s.w_out(), s.c_out, 0, first, tiles, e);
}

// y = A^T m A (+ bias) + beta * y for the `tiles` tiles from `first`, cropped at the image's edge.
void transform_outputs(const Conv2dShape& s, const float* m, const float* bias, int64_t first, int64_t tiles,
                       float* y, float beta) {
  const Tiling tl = tiling(s);
  const int64_t c_out = s.c_out;
  const int ho = s.h_out(), wo = s.w_out();
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
  for (int64_t t = 0; t < tiles; ++t) {
    const int n = int((first + t) / tl.per_image()), r = int((first + t) % tl.per_image());
    const int h0 = (r / tl.cols) * kOut, w0 = (r % tl.cols) * kOut;
    for (int c0 = 0; c0 < s.c_out; c0 += kLanes) {
      alignas(32) float b[kOut][kIn][kLanes], o[kOut][kOut][kLanes];
      const float* tile = m + t * kPositions * c_out + c0;  // position (i, j) at tile + (6 i + j) c_out
      for (int j = 0; j < kIn; ++j) output_1d(tile + j * c_out, kIn * c_out, b[0][j], kIn * kLanes);  // columns
      for (int i = 0; i < kOut; ++i) output_1d(b[i][0], kLanes, o[i][0], kLanes);                       // rows
      for (int i = 0; i < kOut && h0 + i < ho; ++i)
        for (int j = 0; j < kOut && w0 + j < wo; ++j) {
          float* out = y + ((int64_t(n) * ho + h0 + i) * wo + w0 + j) * c_out + c0;
          const float* res = o[i][j];
          if (beta == 0.f) {
#pragma omp simd
            for (int c = 0; c < kLanes; ++c) out[c] = res[c] + (bias ? bias[c0 + c] : 0.f);
          } else {
#pragma omp simd
            for (int c = 0; c < kLanes; ++c) out[c] = res[c] + (bias ? bias[c0 + c] : 0.f) + beta * out[c];
          }
        }
    }
  }
}

}  // namespace

bool applies(const Conv2dShape& s) {
  return s.kh == 3 && s.kw == 3 && s.stride == 1 && s.pad >= 0 && s.pad <= 2 && s.c_in % kLanes == 0 &&
         s.c_out % kLanes == 0 && s.h_out() > 0 && s.w_out() > 0;
}

Conv2dShape data_gradient_shape(const Conv2dShape& s) {
  Conv2dShape t = s;
  t.c_in = s.c_out;
  t.c_out = s.c_in;
  t.h = s.h_out();
  t.w = s.w_out();
  t.pad = 2 - s.pad;
  return t;
}

size_t weight_floats(const Conv2dShape& s) { return size_t(kPositions) * s.c_in * s.c_out; }

void transform_weights(const Conv2dShape& s, const float* w_oihw, bool data_gradient, float* u) {
  // The transformed layer's channels: forward (ci, co) = (s.c_in, s.c_out); data gradient (s.c_out, s.c_in).
  // Eight output channels at a time into a block of kBlock, whose 36 rows are then written out one after another
  // (36 interleaved streams of 32 bytes ran at a third of the memory's write speed); an input channel's 36
  // positions lie together, as a tile's do in the transformed inputs.
  constexpr int kBlock = 256;
  const int c_in = data_gradient ? s.c_out : s.c_in, c_out = data_gradient ? s.c_in : s.c_out;
#pragma omp parallel for collapse(2) schedule(static)
  for (int ci = 0; ci < c_in; ++ci)
    for (int b0 = 0; b0 < c_out; b0 += kBlock) {
      alignas(32) float block[kPositions][kBlock];
      const int b1 = std::min(c_out, b0 + kBlock);
      for (int co0 = b0; co0 < b1; co0 += kLanes) {
        alignas(32) float g[3][3][kLanes], gt[kIn][3][kLanes], uu[kIn][kIn][kLanes];
        for (int c = 0; c < kLanes; ++c) {
          if (data_gradient) {  // filter (ci, co) of the OIHW weight, rotated by 180 degrees
            const float* w = w_oihw + (int64_t(ci) * s.c_in + co0 + c) * 9;
            for (int tap = 0; tap < 9; ++tap) g[2 - tap / 3][2 - tap % 3][c] = w[tap];
          } else {  // filter (co, ci)
            const float* w = w_oihw + (int64_t(co0 + c) * s.c_in + ci) * 9;
            for (int tap = 0; tap < 9; ++tap) g[tap / 3][tap % 3][c] = w[tap];
          }
        }
        for (int b = 0; b < 3; ++b) filter_1d(g[0][b], 3 * kLanes, gt[0][b], 3 * kLanes);  // G g
        for (int a = 0; a < kIn; ++a) filter_1d(gt[a][0], kLanes, uu[a][0], kLanes);      // (G g) G^T
        for (int p = 0; p < kPositions; ++p) {
          const float* src = uu[p / kIn][p % kIn];
          std::copy(src, src + kLanes, block[p] + (co0 - b0));
        }
      }
      for (int p = 0; p < kPositions; ++p)
        std::copy(block[p], block[p] + (b1 - b0), u + (int64_t(ci) * kPositions + p) * c_out + b0);
    }
}

void filter_gradient(const Conv2dShape& s, const float* x, const float* dy, float* dw_oihw, float* sums,
                     float* scratch) {
  const int chunk = images_per_chunk(s);
  const int64_t per_image = tiling(s).per_image();
  // sums[ci][p][co]: position p's c_in x c_out matrix (row stride 36 c_out) = the sum over tiles of v[p]^T e[p],
  // chunk after chunk in a fixed order; an input channel's 36 positions lie together for the transform back, as
  // a tile's do in v and e (read from 36 planes, 1 MB apart for 512 channels, the filter gradient took 1.1-1.3
  // times as long for 256 and 512 channels). The threads take whole positions (single-threaded sgemms), as
  // OpenBLAS spreads a 64 x 64 product over threads at a high cost in packing and waiting: 0.7-0.9 of the time
  // of threaded sgemms for 64 to 512 channels, and each sum is the same for any number of threads.
  for (int n0 = 0; n0 < s.n; n0 += chunk) {
    const int n1 = std::min(s.n, n0 + chunk);
    const int64_t tiles = (n1 - n0) * per_image;
    float* v = scratch;
    float* e = scratch + kPositions * tiles * s.c_in;
    transform_inputs(s, x, n0 * per_image, tiles, v);
    transform_output_gradients(s, dy, n0 * per_image, tiles, e);
#pragma omp parallel for schedule(static)
    for (int p = 0; p < kPositions; ++p)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, s.c_in, s.c_out, int(tiles), 1.f, v + p * s.c_in,
                  kPositions * s.c_in, e + p * s.c_out, kPositions * s.c_out, n0 == 0 ? 0.f : 1.f, sums + p * s.c_out,
                  kPositions * s.c_out);
  }
  // dw[co][ci] = G^T sums[ci][.][co] G, eight output channels at a time.
#pragma omp parallel for schedule(static)
  for (int ci = 0; ci < s.c_in; ++ci)
    for (int co0 = 0; co0 < s.c_out; co0 += kLanes) {
      alignas(32) float b[3][kIn][kLanes], g[3][3][kLanes];
      const float* a = sums + int64_t(ci) * kPositions * s.c_out + co0;  // position (i, j) at a + (6 i + j) c_out
      for (int j = 0; j < kIn; ++j)  // columns
        filter_gradient_1d(a + j * s.c_out, kIn * s.c_out, b[0][j], kIn * kLanes);
      for (int i = 0; i < 3; ++i) filter_gradient_1d(b[i][0], kLanes, g[i][0], kLanes);  // rows
      for (int c = 0; c < kLanes; ++c) {
        float* out = dw_oihw + (int64_t(co0 + c) * s.c_in + ci) * 9;
        for (int tap = 0; tap < 9; ++tap) out[tap] = g[tap / 3][tap % 3][c];
      }
    }
}

namespace {

// Layers with up to 512 channels in and out together run a block of kBlockTiles tiles at a time per thread
// through both transforms and the 36 sgemms (one thread each, inside the parallel region), with no barrier
// between the phases and the block's transformed tiles (up to 4.7 MB) near the thread's core; each block reads
// the whole transformed weight (up to 2.4 MB here). Deeper layers share each phase among the threads, a chunk
// of images at a time, so that the transformed weight is read once per chunk, the threads taking whole positions
// for the sgemms (as the filter gradient's). Measured on CIFAR ResNet-18 (AVX2, 2 threads, batch 32), forward
// and data gradient: 0.55-0.85 of the shared form's time for 64 channels, about the same to 0.6 for 128 and 256;
// blocks of 128 tiles were slower for 256 channels, and of 16 or 32 no faster for 64 and 128.
constexpr int kFusedChannels = 512;
constexpr int kBlockTiles = 64;

bool fused(const Conv2dShape& s) { return s.c_in + s.c_out <= kFusedChannels; }

// m = v u at position p for `tiles` tiles (one single-threaded sgemm where called inside a parallel region):
// v[t][p][ci], u[ci][p][co], m[t][p][co].
void multiply_position(const Conv2dShape& s, int p, int64_t tiles, const float* v, const float* u, float* m) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(tiles), s.c_out, s.c_in, 1.f, v + p * s.c_in,
              kPositions * s.c_in, u + p * s.c_out, kPositions * s.c_out, 0.f, m + p * s.c_out, kPositions * s.c_out);
}

}  // namespace

size_t scratch_floats(const Conv2dShape& s) {
  // The chunks of the shared form (the filter gradient always takes it) or a block per thread.
  const size_t chunked = size_t(kPositions) * images_per_chunk(s) * tiling(s).per_image() * (s.c_in + s.c_out);
  if (!fused(s)) return chunked;
  return std::max(chunked, size_t(omp_get_max_threads()) * kPositions * kBlockTiles * (s.c_in + s.c_out));
}

void convolve(const Conv2dShape& s, const float* x, const float* u, const float* bias, float* y, float beta,
              float* scratch) {
  const int64_t per_image = tiling(s).per_image();
  if (fused(s)) {
    const int threads = omp_get_max_threads();  // as scratch_floats counted
    // Blocks of at most kBlockTiles, as many for every thread (32 tiles are two blocks of 16 on two threads).
    const int64_t total = s.n * per_image;
    const int64_t per_round = int64_t(threads) * kBlockTiles;
    const int64_t blocks = threads * ((total + per_round - 1) / per_round);
    const int64_t block_tiles = (total + blocks - 1) / blocks;
    const int64_t per_thread = int64_t(kPositions) * kBlockTiles * (s.c_in + s.c_out);
#pragma omp parallel num_threads(threads)
    {
      float* v = scratch + omp_get_thread_num() * per_thread;
      float* m = v + int64_t(kPositions) * kBlockTiles * s.c_in;
#pragma omp for schedule(static)
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t first = b * block_tiles, tiles = std::min<int64_t>(block_tiles, total - first);
        if (tiles <= 0) continue;
        transform_inputs(s, x, first, tiles, v);
        for (int p = 0; p < kPositions; ++p) multiply_position(s, p, tiles, v, u, m);
        transform_outputs(s, m, bias, first, tiles, y, beta);
      }
    }
    return;
  }
  const int chunk = images_per_chunk(s);
  for (int n0 = 0; n0 < s.n; n0 += chunk) {
    const int n1 = std::min(s.n, n0 + chunk);
    const int64_t tiles = (n1 - n0) * per_image;
    float* v = scratch;
    float* m = scratch + kPositions * tiles * s.c_in;
    transform_inputs(s, x, n0 * per_image, tiles, v);
#pragma omp parallel for schedule(static)
    for (int p = 0; p < kPositions; ++p) multiply_position(s, p, tiles, v, u, m);
    transform_outputs(s, m, bias, n0 * per_image, tiles, y, beta);
  }
}

}  // namespace intl::cpu::winograd
