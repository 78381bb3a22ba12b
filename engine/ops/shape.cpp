// Shape ops: reshape, transpose, slice and expand are views where the layout allows; concat copies. Also the
// identity, and the device cache of such host-built constants.
#include <map>
#include <mutex>
#include <utility>

#include "engine/ops/common.h"

namespace intl {

namespace ops {

Tensor host_constant(const std::string& key, Device device, const std::function<Tensor()>& build_on_cpu) {
  if (device == Device::cpu) return build_on_cpu();
  static std::mutex mutex;
  static auto* cache = new std::map<std::pair<std::string, Device>, Tensor>();  // never destroyed (exit order)
  Tensor constant;
  {
    std::lock_guard<std::mutex> lock(mutex);
    Tensor& slot = (*cache)[{key, device}];
    if (!slot.defined()) slot = build_on_cpu().to(device);
    constant = slot;
  }
  return constant.clone();
}

}  // namespace ops

using namespace ops;

Tensor reshape(const Tensor& x, const Shape& shape_in) {
  Shape shape = shape_in;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      INTL_CHECK(infer < 0, "reshape: more than one -1 in " + shape_str(shape_in));
      infer = int64_t(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) shape[size_t(infer)] = known ? x.numel() / known : 0;
  INTL_CHECK(shape_numel(shape) == x.numel(),
             "reshape: cannot view " + shape_str(x.shape()) + " as " + shape_str(shape_in));
  Tensor src = x.is_contiguous() ? x.detach() : x.detach().contiguous();
  Tensor y = make_view(src, shape, contiguous_strides(shape), src.impl()->offset);
  if (needs_grad({x}))
    record("reshape", {x}, y, [old = x.shape()](const Tensor& g) { return std::vector<Tensor>{reshape(g, old)}; });
  return y;
}

Tensor transpose(const Tensor& x, int64_t a0, int64_t a1) {
  if (a0 < 0) a0 += x.dim();
  if (a1 < 0) a1 += x.dim();
  INTL_CHECK(a0 >= 0 && a1 >= 0 && a0 < x.dim() && a1 < x.dim(),
             "transpose: axes out of range for " + shape_str(x.shape()));
  Shape shape = x.shape(), strides = x.strides();
  std::swap(shape[size_t(a0)], shape[size_t(a1)]);
  std::swap(strides[size_t(a0)], strides[size_t(a1)]);
  Tensor y = make_view(x, shape, strides, x.impl()->offset);
  if (needs_grad({x}))
    record("transpose", {x}, y, [a0, a1](const Tensor& g) { return std::vector<Tensor>{transpose(g, a0, a1)}; });
  return y;
}

Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t stop) {
  if (axis < 0) axis += x.dim();
  INTL_CHECK(axis >= 0 && axis < x.dim(), "slice: axis out of range for " + shape_str(x.shape()));
  const int64_t n = x.shape()[size_t(axis)];
  INTL_CHECK(0 <= start && start <= stop && stop <= n, "slice [" + std::to_string(start) + ", " + std::to_string(stop) +
                                                           ") out of range for extent " + std::to_string(n));
  Shape shape = x.shape();
  shape[size_t(axis)] = stop - start;
  Tensor y = make_view(x, shape, x.strides(), x.impl()->offset + start * x.strides()[size_t(axis)]);
  if (needs_grad({x}))
    record("slice", {x}, y, [full = x.shape(), axis, start, stop](const Tensor& g) {
      // Scatter into zeros: the pieces before and after the slice are zero.
      std::vector<Tensor> parts;
      Shape s = full;
      if (start > 0) { s[size_t(axis)] = start; parts.push_back(Tensor::zeros(s, g.dtype(), g.device())); }
      parts.push_back(g);
      if (stop < full[size_t(axis)]) {
        s[size_t(axis)] = full[size_t(axis)] - stop;
        parts.push_back(Tensor::zeros(s, g.dtype(), g.device()));
      }
      return std::vector<Tensor>{parts.size() == 1 ? g : concat(parts, axis)};
    });
  return y;
}

Tensor concat(const std::vector<Tensor>& xs, int64_t axis) {
  INTL_CHECK(!xs.empty(), "concat of no tensors");
  if (axis < 0) axis += xs[0].dim();
  if (axis != 0) {  // concatenate along the leading axis of transposed views, then transpose back
    std::vector<Tensor> ts;
    for (const Tensor& t : xs) ts.push_back(transpose(t, 0, axis));
    return transpose(concat(ts, 0), 0, axis).contiguous();
  }
  Shape shape = xs[0].shape();
  int64_t total = 0;
  std::vector<int64_t> sizes;
  for (const Tensor& t : xs) {
    check_same("concat", xs[0], t);
    INTL_CHECK(t.dim() == xs[0].dim(), "concat: ranks differ");
    for (int64_t i = 1; i < t.dim(); ++i)
      INTL_CHECK(t.shape()[size_t(i)] == shape[size_t(i)],
                 "concat: shapes " + shape_str(xs[0].shape()) + " and " + shape_str(t.shape()) +
                     " differ off the axis");
    sizes.push_back(t.shape()[0]);
    total += t.shape()[0];
  }
  shape[0] = total;
  Tensor y = Tensor::empty(shape, xs[0].dtype(), xs[0].device());
  int64_t at = 0;
  for (const Tensor& t : xs) {  // each piece is a contiguous block of y
    backend(y.device()).copy(t, make_view(y, t.shape(), contiguous_strides(t.shape()), at * y.strides()[0]));
    at += t.shape()[0];
  }
  if (needs_grad(xs))
    record("concat", xs, y, [sizes](const Tensor& g) {
      std::vector<Tensor> out;
      int64_t a = 0;
      for (int64_t k : sizes) {
        out.push_back(slice(g, 0, a, a + k));
        a += k;
      }
      return out;
    });
  return y;
}

Tensor expand(const Tensor& x, const Shape& shape) {
  INTL_CHECK(shape.size() >= size_t(x.dim()), "expand: " + shape_str(x.shape()) + " to " + shape_str(shape));
  const size_t lead = shape.size() - size_t(x.dim());
  Shape strides(shape.size(), 0);
  for (size_t i = 0; i < size_t(x.dim()); ++i) {
    const int64_t e = x.shape()[i];
    INTL_CHECK(e == shape[i + lead] || e == 1, "expand: " + shape_str(x.shape()) + " to " + shape_str(shape));
    strides[i + lead] = e == 1 ? 0 : x.strides()[i];
  }
  Tensor y = make_view(x, shape, strides, x.impl()->offset);
  if (needs_grad({x})) record("expand", {x}, y, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return y;
}

Tensor eye(int64_t n, DType dtype, Device device) {
  return host_constant("eye " + std::to_string(n) + " " + dtype_name(dtype), device, [n, dtype] {
    Tensor t = Tensor::zeros({n, n}, dtype, Device::cpu);
    for (int64_t i = 0; i < n; ++i) {
      if (dtype == DType::f32) t.data<float>()[i * n + i] = 1.0f;
      else t.data<double>()[i * n + i] = 1.0;
    }
    return t;
  });
}

Tensor diagonal(const Tensor& x) {
  INTL_CHECK(x.dim() == 2 && x.size(0) == x.size(1), "diagonal of non-square " + shape_str(x.shape()));
  Tensor y = make_view(x, {x.size(0)}, {x.strides()[0] + x.strides()[1]}, x.impl()->offset);
  if (needs_grad({x}))
    record("diagonal", {x}, y, [n = x.size(0)](const Tensor& g) {
      return std::vector<Tensor>{mul(eye(n, g.dtype(), g.device()), reshape(g, {1, n}))};
    });
  return y;
}

Tensor Tensor::clone() const {
  Tensor y = Tensor::empty(shape(), dtype(), device());
  backend(device()).copy(*this, y);
  if (needs_grad({*this})) record("clone", {*this}, y, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return y;
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor cast(const Tensor& x, DType dtype) {
  INTL_CHECK(is_floating(x.dtype()) && is_floating(dtype), std::string("cast: floating dtypes only, got ") +
                                                         dtype_name(x.dtype()) + " to " + dtype_name(dtype));
  if (x.dtype() == dtype) return x;
  Tensor y = x.detach().to(dtype);
  if (needs_grad({x}))
    record("cast", {x}, y, [from = x.dtype()](const Tensor& g) { return std::vector<Tensor>{g.to(from)}; });
  return y;
}

}  // namespace intl
