// Convolutional layers on (N, C, H, W) activations: conv2d, BatchNorm2d, max pooling and global average
// pooling, each forward with its backward right below, on the backend's conv / batch-norm / pool kernels.
#include "engine/ops/common.h"

namespace intl {
using namespace ops;

namespace {
Tensor contiguous_detached(const Tensor& t) { return t.is_contiguous() ? t.detach() : t.detach().contiguous(); }
}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding) {
  check_same("conv2d", x, weight);
  check(is_float(x.dtype()), std::string("conv2d needs float tensors, got ") + dtype_name(x.dtype()));
  check(x.dim() == 4, "conv2d: input must be (N, C, H, W), got " + shape_str(x.shape()));
  check(weight.dim() == 4 && weight.size(1) == x.size(1),
        "conv2d: weight must be (c_out, " + std::to_string(x.size(1)) + ", kh, kw) for input " +
            shape_str(x.shape()) + ", got " + shape_str(weight.shape()));
  check(stride >= 1 && padding >= 0, "conv2d: stride must be >= 1 and padding >= 0, got stride " +
                                         std::to_string(stride) + " padding " + std::to_string(padding));
  if (bias.defined()) {
    check_same("conv2d", x, bias);
    check(bias.dim() == 1 && bias.size(0) == weight.size(0), "conv2d: bias must be (" +
                                                                 std::to_string(weight.size(0)) + "), got " +
                                                                 shape_str(bias.shape()));
  }
  Conv2dArgs args{x.size(0), x.size(1), x.size(2), x.size(3), weight.size(0), weight.size(2), weight.size(3),
                  stride, padding};
  check(args.h + 2 * padding >= args.kh && args.w + 2 * padding >= args.kw,
        "conv2d: kernel " + shape_str(weight.shape()) + " is larger than the padded input " + shape_str(x.shape()));
  const Tensor xc = contiguous_detached(x), wc = contiguous_detached(weight);
  // (N, C_out, H_out, W_out)
  Tensor y = Tensor::empty({args.n, args.c_out, args.h_out(), args.w_out()}, x.dtype(), x.device());
  backend(x.device()).conv2d_forward(args, xc, wc, bias.defined() ? bias.detach() : Tensor(), y);
  if (needs_grad({x, weight, bias})) {
    const bool gx = x.requires_grad(), gw = weight.requires_grad(), gb = bias.defined() && bias.requires_grad();
    record("conv2d", {x, weight, bias}, y, [args, xc, wc, gx, gw, gb](const Tensor& g) {
      const Tensor gc = g.is_contiguous() ? g : g.contiguous();
      const Backend& be = backend(gc.device());
      Tensor dx, dweight, dbias;
      if (gx) {
        dx = empty_like(xc);
        be.conv2d_backward_data(args, gc, wc, dx);
      }
      if (gw || gb) {
        dweight = empty_like(wc);
        if (gb) dbias = Tensor::empty({args.c_out}, gc.dtype(), gc.device());
        be.conv2d_backward_filter(args, xc, gc, dweight, dbias);
      }
      return std::vector<Tensor>{dx, gw ? dweight : Tensor(), dbias};
    });
  }
  return y;
}

Tensor batch_norm_2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                     const Tensor& running_var, bool training, double momentum, double eps) {
  check(x.dim() == 4, "batch_norm_2d: input must be (N, C, H, W), got " + shape_str(x.shape()));
  check(is_float(x.dtype()), std::string("batch_norm_2d needs a float input, got ") + dtype_name(x.dtype()));
  const int64_t n = x.size(0), c = x.size(1), spatial = x.size(2) * x.size(3);
  for (const Tensor* t : {&gamma, &beta, &running_mean, &running_var})
    if (t->defined()) {
      check_same("batch_norm_2d", x, *t);
      check(t->dim() == 1 && t->size(0) == c, "batch_norm_2d: per-channel tensors must be (" + std::to_string(c) +
                                                  ") for input " + shape_str(x.shape()) + ", got " +
                                                  shape_str(t->shape()));
    }
  if (!training) {
    check(running_mean.defined() && running_var.defined(), "batch_norm_2d in eval mode needs running statistics");
    // y = x * scale + shift with scale = gamma / sqrt(var + eps), shift = beta - mean * scale.
    Tensor scale = rsqrt(add(running_var.detach(), eps));
    if (gamma.defined()) scale = mul(scale, gamma);
    Tensor shift = neg(mul(running_mean.detach(), scale));
    if (beta.defined()) shift = add(shift, beta);
    return add(mul(x, reshape(scale, {1, c, 1, 1})), reshape(shift, {1, c, 1, 1}));
  }
  check(n * spatial > 1, "batch_norm_2d in training needs more than one value per channel, got input " +
                             shape_str(x.shape()));
  BatchNormArgs args{n, c, spatial, eps, momentum};
  const Tensor xc = contiguous_detached(x);
  const Tensor g = gamma.defined() ? gamma.detach() : Tensor();
  Tensor y = empty_like(xc);                                // (N, C, H, W)
  Tensor mean = Tensor::empty({c}, x.dtype(), x.device());  // saved batch statistics
  Tensor invstd = Tensor::empty({c}, x.dtype(), x.device());
  backend(x.device()).batchnorm_forward_train(args, xc, g, beta.defined() ? beta.detach() : Tensor(), y, mean,
                                              invstd, running_mean, running_var);
  if (running_mean.defined()) running_mean.bump_version();
  if (running_var.defined()) running_var.bump_version();
  if (needs_grad({x, gamma, beta})) {
    record("batch_norm_2d", {x, gamma, beta}, y, [args, xc, g, mean, invstd](const Tensor& dy) {
      const Tensor dyc = dy.is_contiguous() ? dy : dy.contiguous();
      Tensor dx = empty_like(xc);
      Tensor dgamma = Tensor::empty({args.features}, xc.dtype(), xc.device());
      Tensor dbeta = Tensor::empty({args.features}, xc.dtype(), xc.device());
      backend(xc.device()).batchnorm_backward_train(args, xc, g, mean, invstd, dyc, dx, dgamma, dbeta);
      return std::vector<Tensor>{dx, dgamma, dbeta};
    });
  }
  return y;
}

Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  check(x.dim() == 4, "max_pool2d: input must be (N, C, H, W), got " + shape_str(x.shape()));
  check(is_float(x.dtype()), std::string("max_pool2d needs a float input, got ") + dtype_name(x.dtype()));
  check(kernel >= 1 && stride >= 1 && padding >= 0 && 2 * padding <= kernel,
        "max_pool2d: kernel " + std::to_string(kernel) + " stride " + std::to_string(stride) + " padding " +
            std::to_string(padding) + " (need kernel, stride >= 1 and padding <= kernel / 2)");
  Pool2dArgs args{x.size(0), x.size(1), x.size(2), x.size(3), kernel, stride, padding};
  check(args.h + 2 * padding >= kernel && args.w + 2 * padding >= kernel,
        "max_pool2d: window " + std::to_string(kernel) + " is larger than the padded input " + shape_str(x.shape()));
  check(args.h * args.w <= INT32_MAX, "max_pool2d: input plane too large for int32 indices");
  const Tensor xc = contiguous_detached(x);
  const Shape out_shape{args.n, args.c, args.h_out(), args.w_out()};
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());            // (N, C, H_out, W_out)
  Tensor indices = Tensor::empty(out_shape, DType::i32, x.device());     // argmax within each input plane
  backend(x.device()).maxpool2d_forward(args, xc, y, indices);
  if (needs_grad({x})) {
    record("max_pool2d", {x}, y, [args, indices, in_shape = x.shape()](const Tensor& g) {
      const Tensor gc = g.is_contiguous() ? g : g.contiguous();
      Tensor dx = Tensor::empty(in_shape, gc.dtype(), gc.device());
      backend(gc.device()).maxpool2d_backward(args, gc, indices, dx);
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

// The mean over H and W; its gradient (dy / (H W) broadcast back) comes from the reduction op.
Tensor global_avg_pool(const Tensor& x) {
  check(x.dim() == 4, "global_avg_pool: input must be (N, C, H, W), got " + shape_str(x.shape()));
  return mean(reshape(x, {x.size(0), x.size(1), x.size(2) * x.size(3)}), {2});
}

}  // namespace intl
