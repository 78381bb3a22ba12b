// (N, C, H, W) <-> (N, H, W, C) copies for tests: PyTorch fixtures and the NCHW reference kernels on one
// side, the engine's NHWC images on the other.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace intl::test {

// x is 4-D; `to_nhwc` says which way: (N, C, H, W) -> (N, H, W, C) when true, the reverse when false.
inline Tensor relayout(const Tensor& x, bool to_nhwc) {
  const int64_t N = x.size(0);
  const int64_t C = to_nhwc ? x.size(1) : x.size(3), H = to_nhwc ? x.size(2) : x.size(1),
                W = to_nhwc ? x.size(3) : x.size(2);
  const std::vector<double> v = x.to_vector();
  std::vector<double> out(v.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) {
          const size_t nchw = size_t(((n * C + c) * H + h) * W + w), nhwc = size_t(((n * H + h) * W + w) * C + c);
          if (to_nhwc) out[nhwc] = v[nchw];
          else out[nchw] = v[nhwc];
        }
  return Tensor::from_vector(out, to_nhwc ? Shape{N, H, W, C} : Shape{N, C, H, W}, x.dtype());
}

inline Tensor nchw_to_nhwc(const Tensor& x) { return relayout(x, true); }
inline Tensor nhwc_to_nchw(const Tensor& x) { return relayout(x, false); }

}  // namespace intl::test
