// Convolutional layers: conv2d, BatchNorm2d (optionally fused with a residual add and ReLU), max pooling and
// global average pooling, each forward with its backward right below, on the backend's kernels.
//
// Layout. Image activations are NHWC, (N, H, W, C), everywhere in the engine: the data loader writes batches so,
// every op here takes and returns them so, and nothing reorders activations inside a training step. Reason:
// oneDNN's fast CPU convolutions read and write NHWC directly (the 20 convolutions of a CIFAR ResNet-18 step
// took 0.75 s in NHWC against 1.27 s in NCHW at batch 32 on one core; see engine/cpu/conv_kernels.h), and with
// channels innermost batch-norm, ReLU, residual adds and pooling are unit-stride loops over channels, BatchNorm2d
// being BatchNorm1d over N * H * W rows. cuDNN is given the same layout (engine/cuda/conv.cpp). Weights stay
// (C_out, C_in, kh, kw), PyTorch's OIHW, so that safetensors files match torchvision's names and shapes.
#include "engine/ops/common.h"
#include "engine/precision.h"

namespace intl {
using namespace ops;

namespace {
Tensor contiguous_detached(const Tensor& t) { return t.is_contiguous() ? t.detach() : t.detach().contiguous(); }

// bfloat16 activations (engine/precision.h) run on CUDA only, beside float32 parameters.
void check_bf16_activation(const char* op, const Tensor& x) {
  INTL_CHECK(x.device() == Device::cuda, std::string(op) + ": bfloat16 activations run on CUDA only (this tensor is on "
                                        "the CPU); cast it to float32 first");
}

// The parameter `p` of an op on activations `x`: the same device, and x's dtype (float32 beside bfloat16).
void check_parameter(const char* op, const Tensor& x, const Tensor& p) {
  if (x.dtype() != DType::bf16) return check_same(op, x, p);
  INTL_CHECK(p.device() == x.device(), std::string(op) + ": tensors on different devices (" + device_name(x.device()) +
                                      " and " + device_name(p.device()) + "); move one with .to()");
  INTL_CHECK(p.dtype() == DType::f32,
             std::string(op) + ": parameters beside bfloat16 activations must be float32, got " + dtype_name(p.dtype()));
}
}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding) {
  INTL_CHECK(x.defined() && weight.defined(), "conv2d: undefined tensor");
  INTL_CHECK(is_floating(x.dtype()), std::string("conv2d needs float tensors, got ") + dtype_name(x.dtype()));
  check_parameter("conv2d", x, weight);
  if (x.dtype() == DType::bf16) {
    check_bf16_activation("conv2d", x);
    INTL_CHECK(!bias.defined(), "conv2d: a bias on bfloat16 activations is not supported (ResNets' convolutions have "
                           "none); run this layer in float32");
  }
  INTL_CHECK(x.dim() == 4, "conv2d: input must be (N, H, W, C), got " + shape_str(x.shape()));
  INTL_CHECK(weight.dim() == 4 && weight.size(1) == x.size(3),
             "conv2d: weight must be (c_out, " + std::to_string(x.size(3)) + ", kh, kw) for input " +
                 shape_str(x.shape()) + ", got " + shape_str(weight.shape()));
  INTL_CHECK(stride >= 1 && padding >= 0, "conv2d: stride must be >= 1 and padding >= 0, got stride " +
                                              std::to_string(stride) + " padding " + std::to_string(padding));
  if (bias.defined()) {
    check_same("conv2d", x, bias);
    INTL_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "conv2d: bias must be (" +
                                                                      std::to_string(weight.size(0)) + "), got " +
                                                                      shape_str(bias.shape()));
  }
  Conv2dArgs args{x.size(0), x.size(3), x.size(1), x.size(2), weight.size(0), weight.size(2), weight.size(3),
                  stride, padding};
  INTL_CHECK(args.h + 2 * padding >= args.kh && args.w + 2 * padding >= args.kw,
             "conv2d: kernel " + shape_str(weight.shape()) + " is larger than the padded input " +
                 shape_str(x.shape()));
  const Tensor xc = contiguous_detached(x), wc = contiguous_detached(weight);
  // A contiguous weight is the parameter's own memory: its version identifies the values there.
  args.weight_version = weight.is_contiguous() ? weight.version() : 0;
  // bfloat16 tensors always run in bfloat16; the backward passes keep the forward's precision (args)
  args.bf16 = matmul_in_bf16(x.dtype()) || x.dtype() == DType::bf16;
  if (x.dtype() != DType::f64) count_matmul(args.bf16);
  const bool backward = needs_grad({x, weight, bias});
  const bool gx = x.requires_grad(), gw = weight.requires_grad(), gb = bias.defined() && bias.requires_grad();
  args.keep_input = backward && gw;
  // (N, H_out, W_out, C_out)
  Tensor y = Tensor::empty({args.n, args.h_out(), args.w_out(), args.c_out}, x.dtype(), x.device());
  backend(x.device()).conv2d_forward(args, xc, wc, bias.defined() ? bias.detach() : Tensor(), y);
  if (backward) {
    record("conv2d", {x, weight, bias}, y, [args, xc, wc, gx, gw, gb](const Tensor& g) {
      const Tensor gc = g.is_contiguous() ? g : g.contiguous();
      const Backend& be = backend(gc.device());
      Tensor dx, dweight, dbias;
      if (gx) {
        dx = empty_like(xc);
        if (gc.dtype() != DType::f64) count_matmul(args.bf16);
        be.conv2d_backward_data(args, gc, wc, dx);
      }
      if (gw || gb) {
        dweight = empty_like(wc);
        if (gb) dbias = Tensor::empty({args.c_out}, gc.dtype(), gc.device());
        if (gc.dtype() != DType::f64) count_matmul(args.bf16);
        be.conv2d_backward_filter(args, xc, gc, dweight, dbias);
      }
      args.saved.reset();  // the device's copies of x and dy go back to its allocator now
      return std::vector<Tensor>{dx, gw ? dweight : Tensor(), dbias};
    });
  }
  return y;
}

Tensor batch_norm_2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                     const Tensor& running_var, bool training, double momentum, double eps) {
  return batch_norm_2d_fused(x, Tensor(), false, gamma, beta, running_mean, running_var, training, momentum, eps);
}

Tensor batch_norm_2d_fused(const Tensor& x, const Tensor& residual, bool relu, const Tensor& gamma,
                           const Tensor& beta, const Tensor& running_mean, const Tensor& running_var, bool training,
                           double momentum, double eps) {
  INTL_CHECK(x.dim() == 4, "batch_norm_2d: input must be (N, H, W, C), got " + shape_str(x.shape()));
  INTL_CHECK(is_floating(x.dtype()), std::string("batch_norm_2d needs a float input, got ") + dtype_name(x.dtype()));
  if (x.dtype() == DType::bf16) check_bf16_activation("batch_norm_2d", x);
  const int64_t c = x.size(3), rows = x.size(0) * x.size(1) * x.size(2);
  for (const Tensor* t : {&gamma, &beta, &running_mean, &running_var})
    if (t->defined()) {
      check_parameter("batch_norm_2d", x, *t);
      INTL_CHECK(t->dim() == 1 && t->size(0) == c, "batch_norm_2d: per-channel tensors must be (" + std::to_string(c) +
                                                       ") for input " + shape_str(x.shape()) + ", got " +
                                                       shape_str(t->shape()));
    }
  if (residual.defined()) {
    check_same("batch_norm_2d", x, residual);
    INTL_CHECK(residual.shape() == x.shape(), "batch_norm_2d: residual " + shape_str(residual.shape()) +
                                                  " must have the input's shape " + shape_str(x.shape()));
  }
  if (!training)
    INTL_CHECK(running_mean.defined() && running_var.defined(), "batch_norm_2d in eval mode needs running statistics");
  else
    INTL_CHECK(rows > 1, "batch_norm_2d in training needs more than one value per channel, got input " +
                             shape_str(x.shape()));
  const Backend& be = backend(x.device());
  const DType stat = compute_dtype(x.dtype());  // of the per-channel statistics and gradients
  if (!be.batchnorm2d_forward) {
    // No fused kernel on this device: BatchNorm1d over the N * H * W rows, then the add and the ReLU.
    Tensor y = reshape(batch_norm_1d(reshape(x, {rows, c}), gamma, beta, running_mean, running_var, training,
                                     momentum, eps),
                       x.shape());
    if (residual.defined()) y = add(y, residual);
    return relu ? intl::relu(y) : y;
  }
  BatchNorm2dArgs args{x.size(0), x.size(1), x.size(2), c, eps, momentum, training, relu};
  const Tensor xc = contiguous_detached(x);
  const Tensor rc = residual.defined() ? contiguous_detached(residual) : Tensor();
  const Tensor g = gamma.defined() ? gamma.detach() : Tensor();
  Tensor y = empty_like(xc);  // (N, H, W, C)
  Tensor mean, invstd;        // saved batch statistics (training)
  if (training) {
    mean = Tensor::empty({c}, stat, x.device());
    invstd = Tensor::empty({c}, stat, x.device());
  }
  be.batchnorm2d_forward(args, xc, g, beta.defined() ? beta.detach() : Tensor(), rc, y, mean, invstd,
                         running_mean, running_var);
  if (training) {
    if (running_mean.defined()) running_mean.bump_version();
    if (running_var.defined()) running_var.bump_version();
  }
  if (needs_grad({x, gamma, beta, residual})) {
    const bool gx = x.requires_grad(), gg = gamma.defined() && gamma.requires_grad(),
               gb = beta.defined() && beta.requires_grad(), gr = residual.defined() && residual.requires_grad();
    const Tensor rm = training ? Tensor() : running_mean.detach(), rv = training ? Tensor() : running_var.detach();
    record("batch_norm_2d", {x, gamma, beta, residual}, y,
           [args, xc, g, mean, invstd, rm, rv, yd = relu ? y.detach() : Tensor(), gx, gg, gb, gr,
            stat](const Tensor& dy) {
             const Tensor dyc = dy.is_contiguous() ? dy : dy.contiguous();
             const int64_t c = args.c;
             Tensor dx = gx ? empty_like(xc) : Tensor();
             Tensor dres = gr ? empty_like(xc) : Tensor();
             Tensor dgamma = gg ? Tensor::empty({c}, stat, xc.device()) : Tensor();
             Tensor dbeta = gb ? Tensor::empty({c}, stat, xc.device()) : Tensor();
             backend(xc.device()).batchnorm2d_backward(args, xc, yd, dyc, g, mean, invstd, rm, rv, dx, dgamma, dbeta,
                                                       dres);
             return std::vector<Tensor>{dx, dgamma, dbeta, dres};
           });
  }
  return y;
}

Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  INTL_CHECK(x.dim() == 4, "max_pool2d: input must be (N, H, W, C), got " + shape_str(x.shape()));
  INTL_CHECK(is_floating(x.dtype()), std::string("max_pool2d needs a float input, got ") + dtype_name(x.dtype()));
  if (x.dtype() == DType::bf16) check_bf16_activation("max_pool2d", x);
  INTL_CHECK(kernel >= 1 && stride >= 1 && padding >= 0 && 2 * padding <= kernel,
             "max_pool2d: kernel " + std::to_string(kernel) + " stride " + std::to_string(stride) + " padding " +
                 std::to_string(padding) + " (need kernel, stride >= 1 and padding <= kernel / 2)");
  Pool2dArgs args{x.size(0), x.size(3), x.size(1), x.size(2), kernel, stride, padding};
  INTL_CHECK(args.h + 2 * padding >= kernel && args.w + 2 * padding >= kernel,
             "max_pool2d: window " + std::to_string(kernel) + " is larger than the padded input " +
                 shape_str(x.shape()));
  INTL_CHECK(args.h * args.w <= INT32_MAX, "max_pool2d: input plane too large for int32 indices");
  const Tensor xc = contiguous_detached(x);
  const Shape out_shape{args.n, args.h_out(), args.w_out(), args.c};
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());         // (N, H_out, W_out, C)
  Tensor indices = Tensor::empty(out_shape, DType::i32, x.device());  // argmax within each input plane
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

// The mean over H and W; its gradient (dy / (H W) broadcast back) comes from the reduction op. bfloat16
// activations are widened first: the features leave the network in float32.
Tensor global_avg_pool(const Tensor& x) {
  INTL_CHECK(x.dim() == 4, "global_avg_pool: input must be (N, H, W, C), got " + shape_str(x.shape()));
  const Tensor xf = x.dtype() == DType::bf16 ? cast(x, DType::f32) : x;
  return mean(reshape(xf, {x.size(0), x.size(1) * x.size(2), x.size(3)}), {1});
}

}  // namespace intl
