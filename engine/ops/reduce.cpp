// Sum and mean over axes. The gradient of a sum is the output gradient broadcast back to the input's shape.
#include <algorithm>

#include "engine/ops/common.h"

namespace intl {
using namespace ops;

namespace {
std::vector<int64_t> normalize_axes(const Tensor& x, std::vector<int64_t> axes) {
  for (int64_t& a : axes) {
    if (a < 0) a += x.dim();
    INTL_CHECK(a >= 0 && a < x.dim(), "sum: axis out of range for shape " + shape_str(x.shape()));
  }
  std::sort(axes.begin(), axes.end());
  axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
  return axes;
}
}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& axes_in, bool keepdim) {
  const std::vector<int64_t> axes = normalize_axes(x, axes_in);
  Shape kept = x.shape();
  for (int64_t a : axes) kept[size_t(a)] = 1;
  Tensor xc = x.is_contiguous() ? x.detach() : x.detach().contiguous();
  Tensor out = Tensor::empty(kept, x.dtype(), x.device());
  backend(x.device()).reduce_sum(xc, out);
  Shape final_shape;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (keepdim || !std::binary_search(axes.begin(), axes.end(), i)) final_shape.push_back(kept[size_t(i)]);
  Tensor y = keepdim ? out : make_view(out, final_shape, contiguous_strides(final_shape), 0);
  if (needs_grad({x}))
    record("sum", {x}, y, [shape = x.shape(), kept](const Tensor& g) {
      return std::vector<Tensor>{expand(reshape(g, kept), shape)};
    });
  return y;
}

Tensor sum(const Tensor& x) {
  std::vector<int64_t> all(size_t(x.dim()));
  for (int64_t i = 0; i < x.dim(); ++i) all[size_t(i)] = i;
  return sum(x, all, false);
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& axes_in, bool keepdim) {
  const std::vector<int64_t> axes = normalize_axes(x, axes_in);
  int64_t count = 1;
  for (int64_t a : axes) count *= x.shape()[size_t(a)];
  return mul(sum(x, axes, keepdim), 1.0 / double(count));
}

Tensor mean(const Tensor& x) { return mul(sum(x), 1.0 / double(x.numel())); }

}  // namespace intl
