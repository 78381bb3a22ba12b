// Convolution: float32 through oneDNN with NHWC activations, one cached primitive per shape and direction
// (scratchpad, reordered weights and staging buffers kept with it), or, for the shapes where it is faster, as
// im2col + OpenBLAS sgemm; the float64 reference as direct loops.
#include <cblas.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <unordered_map>

#include "engine/allocator.h"
#include "engine/cpu/conv_kernels.h"
#include "engine/cpu/conv_winograd.h"
#include "engine/error.h"

namespace intl::cpu {
namespace {

using dnnl::memory;
using tag = memory::format_tag;

// A grow-only block from the caching allocator.
struct Buffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { cpu_free(ptr, bytes); }
  void release() {
    cpu_free(ptr, bytes);
    ptr = nullptr;
    bytes = 0;
  }
  float* reserve(size_t n) {
    if (n > bytes) {
      cpu_free(ptr, bytes);
      ptr = cpu_alloc(n);
      bytes = n;
    }
    return static_cast<float*>(ptr);
  }
};

enum class Direction { forward, backward_data, backward_filter };

// Which kernel family serves a (shape, direction): oneDNN's (the blocked ones stage activations in nChw16c or
// nChw8c), im2col + sgemm, or our Winograd F(4x4, 3x3) (conv_winograd.h).
enum class Kernel { nhwc_direct, blocked_direct, blocked_winograd, gemm, winograd };

struct PlanKey {
  Direction direction;
  Conv2dShape s;
  bool bias;
  Kernel kernel;
  bool operator==(const PlanKey& o) const {
    const Conv2dShape& a = s;
    const Conv2dShape& b = o.s;
    return direction == o.direction && bias == o.bias && kernel == o.kernel && a.n == b.n && a.c_in == b.c_in &&
           a.h == b.h && a.w == b.w && a.c_out == b.c_out && a.kh == b.kh && a.kw == b.kw && a.stride == b.stride &&
           a.pad == b.pad;
  }
};

struct PlanKeyHash {
  size_t operator()(const PlanKey& k) const {
    const Conv2dShape& s = k.s;
    size_t h = (size_t(k.direction) * 5 + size_t(k.kernel)) * 2 + size_t(k.bias);
    for (int v : {s.n, s.c_in, s.h, s.w, s.c_out, s.kh, s.kw, s.stride, s.pad}) h = h * 1000003u ^ size_t(v);
    return h;
  }
};

// An activation argument of a primitive: the caller's NHWC memory and, when the primitive wants oneDNN's blocked
// nChw16c layout, a staging copy plus the reorders between the two.
struct ActivationPort {
  memory user;     // NHWC, the caller's pointer
  memory staged;   // the primitive's format (same as `user` when plain)
  bool plain = true;
  int staging_slot = 0;           // which shared staging buffer holds `staged`
  dnnl::reorder to_staged;        // inputs
  dnnl::reorder from_staged;      // outputs, beta = 0
  dnnl::reorder from_staged_add;  // outputs, dst = result + beta_add * dst
  float beta_add = 0.f;
};

// oneDNN's copy of one weight tensor in the primitive's preferred format.
struct BlockedWeight {
  uint64_t version = 0;
  float sample[16] = {};  // weight values spread over the tensor when copied: a guard against a stale version
  Buffer data;
};

constexpr int kSamples = 16;

// Everything one (shape, direction) needs, created on its first call.
struct Plan {
  Kernel kernel = Kernel::nhwc_direct;
  dnnl::primitive primitive;
  // forward: src -> dst; backward-data: diff_dst -> diff_src; backward-filter: src and diff_dst, both inputs.
  ActivationPort in, out;
  memory weights, bias, scratchpad;
  size_t scratchpad_bytes = 0;
  bool weights_plain = true;      // the primitive reads / writes OIHW weights directly
  dnnl::reorder weights_reorder;  // OIHW -> the primitive's format (backward-filter: the other way)
  memory weights_user;            // OIHW
  std::unordered_map<const float*, BlockedWeight> blocked;  // forward / backward-data: per weight address
  Buffer staging;       // the fresh result before it is added to the caller's (beta != 0, plain layouts)
  Buffer staging_bias;  // same for the bias gradient
  Buffer diff_blocked;  // backward-filter: dweight in the primitive's format
};

// oneDNN's ISA values are nested bit sets (avx2_vnni = 0x407 is numerically above avx512_core = 0x27).
bool has_avx512_core() {
  const auto bits = unsigned(dnnl::cpu_isa::avx512_core);
  return (unsigned(dnnl::get_effective_cpu_isa()) & bits) == bits;
}

struct Context {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::unordered_map<PlanKey, std::unique_ptr<Plan>, PlanKeyHash> plans;
  Buffer scratchpad;     // shared by all plans: kernels run one at a time
  Buffer activation[2];  // blocked staging copies of activations, shared likewise
  Buffer subsampled;     // a strided 1x1 convolution's input pixels (conv2d_backward_filter)
  Buffer columns;        // im2col rows of the images in one chunk (Kernel::gemm), or Winograd's scratch
  Buffer winograd_sums;  // the 36 transformed filter-gradient sums (Kernel::winograd)
  ConvKernels kernels = ConvKernels::fastest;
  bool avx512 = has_avx512_core();
};

Context& context() {
  thread_local Context c;
  return c;
}

void execute(Context& ctx, const dnnl::primitive& p, std::initializer_list<dnnl_exec_arg_t> args) {
  const dnnl_status_t st = dnnl_primitive_execute(p.get(), ctx.stream.get(), int(args.size()), args.begin());
  INTL_CHECK(st == dnnl_success, "oneDNN failed to execute a convolution primitive (status " + std::to_string(int(st)) +
                                     ")");
}

void reorder(Context& ctx, const dnnl::reorder& r, const memory& from, const memory& to) {
  execute(ctx, r, {{DNNL_ARG_FROM, from.get()}, {DNNL_ARG_TO, to.get()}});
}

// dst = src + beta * dst over n floats.
void add_scaled(float* dst, const float* src, size_t n, float beta) {
#pragma omp parallel for simd schedule(static) if (n > (size_t(1) << 16))
  for (size_t i = 0; i < n; ++i) dst[i] = src[i] + beta * dst[i];
}

void make_port(Context& ctx, ActivationPort& port, const memory::desc& user_md, const memory::desc& prim_md,
               bool is_output, int slot) {
  port.user = memory(user_md, ctx.engine, DNNL_MEMORY_NONE);
  port.plain = prim_md == user_md;
  port.staged = port.plain ? port.user : memory(prim_md, ctx.engine, DNNL_MEMORY_NONE);
  port.staging_slot = slot;
  if (port.plain) return;
  if (is_output) {
    port.from_staged = dnnl::reorder(port.staged, port.user);
  } else {
    port.to_staged = dnnl::reorder(port.user, port.staged);
  }
}

// Points an input port at x, staging it in the primitive's layout when that differs.
void bind_input(Context& ctx, ActivationPort& port, const float* x) {
  port.user.set_data_handle(const_cast<float*>(x));
  if (port.plain) return;
  port.staged.set_data_handle(ctx.activation[port.staging_slot].reserve(port.staged.get_desc().get_size()));
  reorder(ctx, port.to_staged, port.user, port.staged);
}

// Points an output port at its destination (a staged one is copied there by finish_output).
void bind_output(Context& ctx, ActivationPort& port, float* y) {
  port.user.set_data_handle(y);
  if (!port.plain)
    port.staged.set_data_handle(ctx.activation[port.staging_slot].reserve(port.staged.get_desc().get_size()));
}

// Moves a staged output into the caller's NHWC memory: y = result + beta * y.
void finish_output(Context& ctx, ActivationPort& port, float beta) {
  if (beta == 0.f) {
    reorder(ctx, port.from_staged, port.staged, port.user);
    return;
  }
  if (port.beta_add != beta || !port.from_staged_add) {
    dnnl::post_ops ops;
    ops.append_sum(beta);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    port.from_staged_add = dnnl::reorder(port.staged, port.user, attr);
    port.beta_add = beta;
  }
  reorder(ctx, port.from_staged_add, port.staged, port.user);
}

std::string describe(const Conv2dShape& s) {
  return "(n " + std::to_string(s.n) + ", c_in " + std::to_string(s.c_in) + ", h " + std::to_string(s.h) + ", w " +
         std::to_string(s.w) + ", c_out " + std::to_string(s.c_out) + ", kernel " + std::to_string(s.kh) + "x" +
         std::to_string(s.kw) + ", stride " + std::to_string(s.stride) + ", pad " + std::to_string(s.pad) + ")";
}

// The kernel family, by measurement. With AVX-512 (per CIFAR ResNet-18 layer, one thread, batch 32 and 256, the
// NHWC <-> nChw16c copies included):
// - Winograd F(4x4, 3x3) (jit_wino_4x3) runs 3x3 stride-1 layers with 16k channels in 0.3-0.75 of the time of
//   the direct kernels once there are enough 4x4 output tiles to share out; at batch 32 the 4x4-pixel stage has
//   32 tiles and is faster direct;
// - the NHWC direct forward (brgconv) is slow on tiny outputs (4x4 pixels: 1.6x the blocked jit kernel), so the
//   forward of such layers uses the blocked layout; elsewhere NHWC direct is the fastest (1x1, strided, stem).
// With AVX2 only (oneDNN 2.6 has neither Winograd nor brgconv there; 2 threads, batch 32, every 3x3 and 1x1
// layer of the backbone with 8k channels), the jit:avx2 kernels on nChw8c take 0.66-0.80 of their time on NHWC
// in all three directions for 32x32 to 16x16 pixels, 0.8-1.0 below; a copy in and out costs under a tenth of
// what the layout saves.
Kernel choose_kernel(Direction dir, const Conv2dShape& s, ConvKernels policy, bool avx512) {
  if (policy == ConvKernels::gemm) return Kernel::gemm;
  if (policy == ConvKernels::winograd) {
    if (winograd::applies(s)) return Kernel::winograd;
    policy = ConvKernels::direct;
  }
  // oneDNN's filter gradient of a layer whose output is smaller than its kernel (a 3x3 layer on 2x2 or 1x1
  // pixels: ResNet-18's last stage on 16-pixel crops) takes 100 to 700 times im2col + sgemm's: 165 ms against
  // 0.24 ms for 64 channels, 2x2 pixels, batch 64 (AVX2, 2 threads; 3x3 pixels and up are not affected).
  if (policy == ConvKernels::fastest && dir == Direction::backward_filter && (s.h_out() < s.kh || s.w_out() < s.kw))
    return Kernel::gemm;
  if (!avx512) {
    if (policy == ConvKernels::fastest && winograd::applies(s)) {
      // Our Winograd F(4x4, 3x3) against the kernels below (`intl bench conv --layers --kernels winograd`: AVX2,
      // 2 threads, a new weight version every call so that the weight transform counts), for 64 to 512
      // channels from 2,048 output pixels: forward and data gradient 0.55-0.85 of the time for 64 channels,
      // 0.5-0.7 for 128 to 512; filter gradient 0.35-0.6. From 512 pixels (the 512-channel 4x4 layer at batch
      // 32, 256 channels 8x8 at batch 8) forward and data gradient about 0.75 of im2col + sgemm's time, the
      // filter gradient about the same; the CIFAR training step at batch 32 alternating with a threshold of
      // 2,048 (`intl bench train --batch 32`, five pairs): 0.79-1.04 of its time, median of pairs 0.91, for
      // 180 MB more memory (the 4x4 layers' transformed weights, 37.7 MB per layer and direction). At 128
      // pixels (batch 8) the 512-channel forward took twice im2col + sgemm's time, most of it the transform of
      // the weight (7-9 ms for 512 x 512 channels, the same at any batch).
      const int64_t pixels = int64_t(s.n) * s.h_out() * s.w_out();
      if (std::min(s.c_in, s.c_out) >= 64 && pixels >= 512) return Kernel::winograd;
    }
    // im2col + sgemm against the blocked kernels (AVX2, 2 threads, batch 32 and 256, the copies into and out of
    // columns counted): faster for every 3x3 layer with 256 or more output channels that downsamples or has
    // 4x4 pixels (0.55-0.85 of the time), and for the filter gradient of every 3x3 layer with 128 or more
    // (0.47-0.9); slower for 64-channel layers and for the forward and data gradient of 256-channel 8x8 ones.
    const bool spatial = s.kh * s.kw > 1;
    if (policy == ConvKernels::fastest && spatial) {
      if (dir == Direction::backward_filter && s.c_out >= 128) return Kernel::gemm;
      if (s.c_out >= 256 && (s.stride > 1 || s.h_out() * s.w_out() <= 16)) return Kernel::gemm;
    }
    const bool blockable = s.c_in % 8 == 0 && s.c_out % 8 == 0;
    return blockable ? Kernel::blocked_direct : Kernel::nhwc_direct;
  }
  const bool blockable = s.c_in % 16 == 0 && s.c_out % 16 == 0;
  const int64_t tiles = int64_t(s.n) * ((s.h_out() + 3) / 4) * ((s.w_out() + 3) / 4);
  if (policy == ConvKernels::fastest && blockable && s.kh == 3 && s.kw == 3 && s.stride == 1 && tiles >= 64)
    return Kernel::blocked_winograd;
  if (dir == Direction::forward && blockable && s.h_out() * s.w_out() <= 16) return Kernel::blocked_direct;
  return Kernel::nhwc_direct;
}

Plan& plan_for(Context& ctx, Direction dir, const Conv2dShape& s, bool with_bias) {
  const Kernel kernel = choose_kernel(dir, s, ctx.kernels, ctx.avx512);
  const PlanKey key{dir, s, with_bias, kernel};
  auto it = ctx.plans.find(key);
  if (it != ctx.plans.end()) return *it->second;
  INTL_CHECK(s.n > 0 && s.c_in > 0 && s.c_out > 0 && s.h > 0 && s.w > 0 && s.kh > 0 && s.kw > 0 && s.stride > 0 &&
                 s.pad >= 0 && s.h_out() > 0 && s.w_out() > 0,
             "conv2d: invalid shape " + describe(s));
  auto plan = std::make_unique<Plan>();
  using dt = memory::data_type;
  const memory::dims src_dims{s.n, s.c_in, s.h, s.w}, dst_dims{s.n, s.c_out, s.h_out(), s.w_out()};
  const memory::dims w_dims{s.c_out, s.c_in, s.kh, s.kw};
  const memory::desc src_user(src_dims, dt::f32, tag::nhwc), dst_user(dst_dims, dt::f32, tag::nhwc);
  const memory::desc w_user(w_dims, dt::f32, tag::oihw), bias_md(memory::dims{s.c_out}, dt::f32, tag::x);
  const memory::dims strides{s.stride, s.stride}, pads{s.pad, s.pad};
  plan->kernel = kernel;
  if (kernel == Kernel::winograd) {
    plan->weights_plain = false;  // forward and data gradient: transformed by weights_for
    return *ctx.plans.emplace(key, std::move(plan)).first->second;
  }
  if (kernel == Kernel::gemm) {
    // No primitive: the weights in OHWI, which is (c_out) x (kh * kw * c_in) in im2col's column order.
    plan->weights = memory(memory::desc(w_dims, dt::f32, tag::ohwi), ctx.engine, DNNL_MEMORY_NONE);
    plan->weights_user = memory(w_user, ctx.engine, DNNL_MEMORY_NONE);
    plan->weights_plain = false;
    plan->weights_reorder = dir == Direction::backward_filter ? dnnl::reorder(plan->weights, plan->weights_user)
                                                              : dnnl::reorder(plan->weights_user, plan->weights);
    return *ctx.plans.emplace(key, std::move(plan)).first->second;
  }
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);

  // The chosen kernel first; the direct NHWC kernels when oneDNN declines it.
  std::unique_ptr<dnnl::convolution_forward::primitive_desc> fwd_pd;
  dnnl::algorithm alg = dnnl::algorithm::convolution_direct;
  const memory::desc w_any(w_dims, dt::f32, tag::any);
  for (const Kernel k : {kernel, Kernel::nhwc_direct}) {
    if (fwd_pd) break;
    alg = k == Kernel::blocked_winograd ? dnnl::algorithm::convolution_winograd : dnnl::algorithm::convolution_direct;
    const tag act = k == Kernel::nhwc_direct ? tag::nhwc : tag::any;
    const memory::desc src_md(src_dims, dt::f32, act), dst_md(dst_dims, dt::f32, act);
    try {
      const auto d = with_bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, src_md,
                                                                 w_any, bias_md, dst_md, strides, pads, pads)
                               : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, src_md,
                                                                 w_any, dst_md, strides, pads, pads);
      fwd_pd = std::make_unique<dnnl::convolution_forward::primitive_desc>(d, attr, ctx.engine);
    } catch (const dnnl::error&) {
      if (k == Kernel::nhwc_direct) throw Error("conv2d: oneDNN has no kernel for shape " + describe(s));
    }
  }
  const memory::desc src_md = fwd_pd->src_desc(), dst_md = fwd_pd->dst_desc();
  memory::desc prim_w;
  dnnl::primitive_desc_base pd_base = *fwd_pd;
  if (dir == Direction::forward) {
    plan->primitive = dnnl::convolution_forward(*fwd_pd);
    prim_w = fwd_pd->weights_desc();
    make_port(ctx, plan->in, src_user, src_md, false, 0);
    make_port(ctx, plan->out, dst_user, dst_md, true, 1);
  } else if (dir == Direction::backward_data) {
    const dnnl::convolution_backward_data::desc d(alg, src_md, w_any, dst_md, strides, pads, pads);
    const dnnl::convolution_backward_data::primitive_desc pd(d, attr, ctx.engine, *fwd_pd);
    plan->primitive = dnnl::convolution_backward_data(pd);
    prim_w = pd.weights_desc();
    make_port(ctx, plan->in, dst_user, pd.diff_dst_desc(), false, 0);
    make_port(ctx, plan->out, src_user, pd.diff_src_desc(), true, 1);
    pd_base = pd;
  } else {
    const auto d = with_bias
                       ? dnnl::convolution_backward_weights::desc(alg, src_md, w_any, bias_md, dst_md, strides, pads,
                                                                  pads)
                       : dnnl::convolution_backward_weights::desc(alg, src_md, w_any, dst_md, strides, pads, pads);
    const dnnl::convolution_backward_weights::primitive_desc pd(d, attr, ctx.engine, *fwd_pd);
    plan->primitive = dnnl::convolution_backward_weights(pd);
    prim_w = pd.diff_weights_desc();
    make_port(ctx, plan->in, src_user, pd.src_desc(), false, 0);
    make_port(ctx, plan->out, dst_user, pd.diff_dst_desc(), false, 1);  // dy: a second input
    pd_base = pd;
  }
  const memory::desc scratch_md = pd_base.scratchpad_desc();
  plan->scratchpad_bytes = scratch_md.get_size();
  plan->weights = memory(prim_w, ctx.engine, DNNL_MEMORY_NONE);
  plan->bias = memory(bias_md, ctx.engine, DNNL_MEMORY_NONE);
  plan->scratchpad = memory(scratch_md, ctx.engine, DNNL_MEMORY_NONE);
  plan->weights_user = memory(w_user, ctx.engine, DNNL_MEMORY_NONE);
  plan->weights_plain = prim_w == w_user;
  if (!plan->weights_plain) {
    plan->weights_reorder = dir == Direction::backward_filter ? dnnl::reorder(plan->weights, plan->weights_user)
                                                              : dnnl::reorder(plan->weights_user, plan->weights);
  }
  return *ctx.plans.emplace(key, std::move(plan)).first->second;
}

void bind_scratchpad(Context& ctx, Plan& p) {
  p.scratchpad.set_data_handle(ctx.scratchpad.reserve(p.scratchpad_bytes));
}

size_t weight_count(const Conv2dShape& s) { return size_t(s.c_out) * s.c_in * s.kh * s.kw; }

// The primitive's copy of `weight`, reordered once per (address, version); a changed sample of the values also
// forces a new copy, which catches most callers that forget to change the version.
const float* weights_for(Context& ctx, Plan& p, Direction dir, const Conv2dShape& s, const float* weight,
                         uint64_t version) {
  if (p.weights_plain) return weight;
  const size_t count = weight_count(s);
  BlockedWeight& b = p.blocked[weight];
  bool fresh = version != 0 && b.version == version && b.data.ptr;
  for (int i = 0; fresh && i < kSamples; ++i) fresh = b.sample[i] == weight[count * i / kSamples];
  if (fresh) return static_cast<const float*>(b.data.ptr);
  float* dst;
  if (p.kernel == Kernel::winograd) {
    dst = b.data.reserve(winograd::weight_floats(s) * sizeof(float));
    winograd::transform_weights(s, weight, dir == Direction::backward_data, dst);
  } else {
    dst = b.data.reserve(p.weights.get_desc().get_size());
    p.weights_user.set_data_handle(const_cast<float*>(weight));
    p.weights.set_data_handle(dst);
    reorder(ctx, p.weights_reorder, p.weights_user, p.weights);
  }
  b.version = version;
  for (int i = 0; i < kSamples; ++i) b.sample[i] = weight[count * i / kSamples];
  return dst;
}

// ---------------------------------------------------------------------------------------------------------------
// im2col + sgemm. A row of columns is one output pixel (n, oh, ow); its kh * kw * c_in entries are the input
// pixels it reads, in (i, j, c) order, zero in the padding. With the weight as OHWI, W (c_out x K):
//   forward          y (rows x c_out)  = columns * W^T
//   backward-data    dcolumns          = dy * W,        then scattered back onto dx's pixels (col2im)
//   backward-filter  dW                = dy^T * columns, summed over chunks
// Images are taken a chunk at a time so that the columns (about 8 MB) stay in the last-level cache.

constexpr size_t kColumnFloats = size_t(1) << 21;

int64_t column_width(const Conv2dShape& s) { return int64_t(s.kh) * s.kw * s.c_in; }

// Calls f(n0, n1, rows, columns) for successive chunks of images [n0, n1): as many images as fit kColumnFloats
// (at least one), rows = their output pixels, columns = room for their im2col rows.
template <class F>
void for_each_chunk(Context& ctx, const Conv2dShape& s, F&& f) {
  const int64_t pixels = int64_t(s.h_out()) * s.w_out(), per_image = pixels * column_width(s);
  const int chunk = int(std::clamp<int64_t>(int64_t(kColumnFloats) / per_image, 1, s.n));
  float* columns = ctx.columns.reserve(size_t(chunk) * per_image * sizeof(float));
  for (int n0 = 0; n0 < s.n; n0 += chunk) {
    const int n1 = std::min(s.n, n0 + chunk);
    f(n0, n1, (n1 - n0) * pixels, columns);
  }
}

// The columns of images [n0, n1).
void im2col(const Conv2dShape& s, const float* x, int n0, int n1, float* columns) {
  const int ho = s.h_out(), wo = s.w_out(), c = s.c_in;
  const int64_t k = column_width(s);
#pragma omp parallel for collapse(2) schedule(static)
  for (int n = n0; n < n1; ++n)
    for (int oh = 0; oh < ho; ++oh) {
      float* out = columns + (int64_t(n - n0) * ho + oh) * wo * k;
      for (int ow = 0; ow < wo; ++ow)
        for (int i = 0; i < s.kh; ++i) {
          const int ih = oh * s.stride - s.pad + i;
          for (int j = 0; j < s.kw; ++j, out += c) {
            const int iw = ow * s.stride - s.pad + j;
            if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) {
              std::fill(out, out + c, 0.f);
            } else {
              const float* in = x + ((int64_t(n) * s.h + ih) * s.w + iw) * c;
              std::copy(in, in + c, out);
            }
          }
        }
    }
}

// dx[n] = beta * dx[n] + the sum of the column entries that read each pixel, for images [n0, n1); an image's
// pixels are written by one thread, in a fixed order.
void col2im(const Conv2dShape& s, const float* columns, int n0, int n1, float* dx, float beta) {
  const int ho = s.h_out(), wo = s.w_out(), c = s.c_in;
  const int64_t k = column_width(s), image = int64_t(s.h) * s.w * c;
#pragma omp parallel for schedule(static)
  for (int n = n0; n < n1; ++n) {
    float* d = dx + n * image;
    if (beta == 0.f) {
      std::fill(d, d + image, 0.f);
    } else if (beta != 1.f) {
      for (int64_t i = 0; i < image; ++i) d[i] *= beta;
    }
    const float* in = columns + int64_t(n - n0) * ho * wo * k;
    for (int oh = 0; oh < ho; ++oh)
      for (int ow = 0; ow < wo; ++ow)
        for (int i = 0; i < s.kh; ++i) {
          const int ih = oh * s.stride - s.pad + i;
          for (int j = 0; j < s.kw; ++j, in += c) {
            const int iw = ow * s.stride - s.pad + j;
            if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
            float* out = d + (int64_t(ih) * s.w + iw) * c;
#pragma omp simd
            for (int ch = 0; ch < c; ++ch) out[ch] += in[ch];
          }
        }
  }
}

void gemm_forward(Context& ctx, const Conv2dShape& s, const float* x, const float* w_ohwi, const float* bias,
                  float* y) {
  const int64_t k = column_width(s), pixels = int64_t(s.h_out()) * s.w_out();
  for_each_chunk(ctx, s, [&](int n0, int n1, int64_t rows, float* columns) {
    float* out = y + n0 * pixels * s.c_out;
    if (bias) {
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < rows; ++r) std::copy(bias, bias + s.c_out, out + r * s.c_out);
    }
    im2col(s, x, n0, n1, columns);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), s.c_out, int(k), 1.f, columns, int(k), w_ohwi,
                int(k), bias ? 1.f : 0.f, out, s.c_out);
  });
}

void gemm_backward_data(Context& ctx, const Conv2dShape& s, const float* dy, const float* w_ohwi, float* dx,
                        float beta) {
  const int64_t k = column_width(s), pixels = int64_t(s.h_out()) * s.w_out();
  for_each_chunk(ctx, s, [&](int n0, int n1, int64_t rows, float* columns) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(k), s.c_out, 1.f,
                dy + n0 * pixels * s.c_out, s.c_out, w_ohwi, int(k), 0.f, columns, int(k));
    col2im(s, columns, n0, n1, dx, beta);
  });
}

// dbias = the sum of dy's rows (overwritten).
void bias_gradient(const Conv2dShape& s, const float* dy, float* dbias) {
  const int64_t rows = int64_t(s.n) * s.h_out() * s.w_out();
  std::fill(dbias, dbias + s.c_out, 0.f);
  for (int64_t r = 0; r < rows; ++r)
    for (int co = 0; co < s.c_out; ++co) dbias[co] += dy[r * s.c_out + co];
}

// dW (OHWI) = dy^T * columns; dbias = the sum of dy's rows (both overwritten).
void gemm_backward_filter(Context& ctx, const Conv2dShape& s, const float* x, const float* dy, float* dw_ohwi,
                          float* dbias) {
  const int64_t k = column_width(s), pixels = int64_t(s.h_out()) * s.w_out();
  for_each_chunk(ctx, s, [&](int n0, int n1, int64_t rows, float* columns) {
    im2col(s, x, n0, n1, columns);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, s.c_out, int(k), int(rows), 1.f,
                dy + n0 * pixels * s.c_out, s.c_out, columns, int(k), n0 == 0 ? 0.f : 1.f, dw_ohwi, int(k));
  });
  if (dbias) bias_gradient(s, dy, dbias);
}

}  // namespace

void conv2d_forward(const Conv2dShape& s, const float* x, const float* weight, uint64_t weight_version,
                    const float* bias, float* y) {
  Context& ctx = context();
  Plan& p = plan_for(ctx, Direction::forward, s, bias != nullptr);
  const float* w = weights_for(ctx, p, Direction::forward, s, weight, weight_version);
  if (p.kernel == Kernel::gemm) return gemm_forward(ctx, s, x, w, bias, y);
  if (p.kernel == Kernel::winograd) {
    float* scratch = ctx.columns.reserve(winograd::scratch_floats(s) * sizeof(float));
    return winograd::convolve(s, x, w, bias, y, 0.f, scratch);
  }
  p.weights.set_data_handle(const_cast<float*>(w));
  bind_scratchpad(ctx, p);
  bind_input(ctx, p.in, x);
  bind_output(ctx, p.out, y);
  if (bias) {
    p.bias.set_data_handle(const_cast<float*>(bias));
    execute(ctx, p.primitive,
            {{DNNL_ARG_SRC, p.in.staged.get()}, {DNNL_ARG_WEIGHTS, p.weights.get()}, {DNNL_ARG_BIAS, p.bias.get()},
             {DNNL_ARG_DST, p.out.staged.get()}, {DNNL_ARG_SCRATCHPAD, p.scratchpad.get()}});
  } else {
    execute(ctx, p.primitive,
            {{DNNL_ARG_SRC, p.in.staged.get()}, {DNNL_ARG_WEIGHTS, p.weights.get()},
             {DNNL_ARG_DST, p.out.staged.get()}, {DNNL_ARG_SCRATCHPAD, p.scratchpad.get()}});
  }
  if (!p.out.plain) finish_output(ctx, p.out, 0.f);
}

void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* weight, uint64_t weight_version,
                          float* dx, float beta) {
  Context& ctx = context();
  Plan& p = plan_for(ctx, Direction::backward_data, s, false);
  const float* w = weights_for(ctx, p, Direction::backward_data, s, weight, weight_version);
  if (p.kernel == Kernel::gemm) return gemm_backward_data(ctx, s, dy, w, dx, beta);
  if (p.kernel == Kernel::winograd) {
    const Conv2dShape t = winograd::data_gradient_shape(s);
    float* scratch = ctx.columns.reserve(winograd::scratch_floats(t) * sizeof(float));
    return winograd::convolve(t, dy, w, nullptr, dx, beta, scratch);
  }
  p.weights.set_data_handle(const_cast<float*>(w));
  const size_t dx_count = size_t(s.n) * s.h * s.w * s.c_in;
  // A plain output with beta != 0 is computed aside and added; a staged one is added by its reorder.
  const bool aside = p.out.plain && beta != 0.f;
  bind_scratchpad(ctx, p);
  bind_input(ctx, p.in, dy);
  bind_output(ctx, p.out, aside ? p.staging.reserve(dx_count * sizeof(float)) : dx);
  execute(ctx, p.primitive,
          {{DNNL_ARG_DIFF_DST, p.in.staged.get()}, {DNNL_ARG_WEIGHTS, p.weights.get()},
           {DNNL_ARG_DIFF_SRC, p.out.staged.get()}, {DNNL_ARG_SCRATCHPAD, p.scratchpad.get()}});
  if (!p.out.plain) finish_output(ctx, p.out, beta);
  if (aside) add_scaled(dx, static_cast<const float*>(p.staging.ptr), dx_count, beta);
}

void conv2d_backward_filter(const Conv2dShape& s, const float* x, const float* dy, float* dweight, float* dbias,
                            float beta) {
  Context& ctx = context();
  if (s.kh == 1 && s.kw == 1 && (s.stride > 1 || s.pad > 0)) {
    // A strided 1x1 convolution's filter gradient is the unit-stride one over the pixels it reads. oneDNN 2.6's
    // AVX2 1x1 backward-weights kernel, which gathers those pixels itself for a strided shape, gives results
    // that change from run to run (wrong by up to the gradient's own size) on two threads when c_in is below its
    // 8-channel block: measured on a 4-channel 1x1 stride-2 layer of a narrow ResNet. Gathering them here and
    // running the unit-stride kernel gives the same numbers every time, at the cost of one copy of the
    // subsampled input.
    Conv2dShape unit = s;
    unit.h = s.h_out();
    unit.w = s.w_out();
    unit.stride = 1;
    unit.pad = 0;
    float* xs = ctx.subsampled.reserve(size_t(unit.n) * unit.h * unit.w * unit.c_in * sizeof(float));
    im2col(s, x, 0, s.n, xs);  // a 1x1 convolution's columns are the pixels it reads
    conv2d_backward_filter(unit, xs, dy, dweight, dbias, beta);
    return;
  }
  Plan& p = plan_for(ctx, Direction::backward_filter, s, dbias != nullptr);
  const size_t w_count = weight_count(s);
  // Where the OIHW result lands before it is added to dweight (beta != 0).
  float* w_plain = beta == 0.f ? dweight : p.staging.reserve(w_count * sizeof(float));
  float* b_out = dbias ? (beta == 0.f ? dbias : p.staging_bias.reserve(size_t(s.c_out) * sizeof(float))) : nullptr;
  if (p.kernel == Kernel::winograd) {
    float* sums = ctx.winograd_sums.reserve(winograd::weight_floats(s) * sizeof(float));
    float* scratch = ctx.columns.reserve(winograd::scratch_floats(s) * sizeof(float));
    winograd::filter_gradient(s, x, dy, w_plain, sums, scratch);
    if (b_out) bias_gradient(s, dy, b_out);
  } else {
    float* w_prim = p.weights_plain ? w_plain : p.diff_blocked.reserve(p.weights.get_desc().get_size());
    p.weights.set_data_handle(w_prim);
    if (p.kernel == Kernel::gemm) {
      gemm_backward_filter(ctx, s, x, dy, w_prim, b_out);
    } else {
      bind_scratchpad(ctx, p);
      bind_input(ctx, p.in, x);
      bind_input(ctx, p.out, dy);
      if (dbias) {
        p.bias.set_data_handle(b_out);
        execute(ctx, p.primitive,
                {{DNNL_ARG_SRC, p.in.staged.get()}, {DNNL_ARG_DIFF_DST, p.out.staged.get()},
                 {DNNL_ARG_DIFF_WEIGHTS, p.weights.get()}, {DNNL_ARG_DIFF_BIAS, p.bias.get()},
                 {DNNL_ARG_SCRATCHPAD, p.scratchpad.get()}});
      } else {
        execute(ctx, p.primitive,
                {{DNNL_ARG_SRC, p.in.staged.get()}, {DNNL_ARG_DIFF_DST, p.out.staged.get()},
                 {DNNL_ARG_DIFF_WEIGHTS, p.weights.get()}, {DNNL_ARG_SCRATCHPAD, p.scratchpad.get()}});
      }
    }
    if (!p.weights_plain) {
      p.weights_user.set_data_handle(w_plain);
      reorder(ctx, p.weights_reorder, p.weights, p.weights_user);
    }
  }
  if (beta != 0.f) {
    add_scaled(dweight, w_plain, w_count, beta);
    if (dbias) add_scaled(dbias, b_out, size_t(s.c_out), beta);
  }
}

void conv2d_set_kernels(ConvKernels kernels) { context().kernels = kernels; }

void conv2d_release_cache() {
  Context& ctx = context();
  ctx.plans.clear();
  ctx.scratchpad.release();
  for (Buffer& b : ctx.activation) b.release();
  ctx.subsampled.release();
  ctx.columns.release();
  ctx.winograd_sums.release();
}

// ---------------------------------------------------------------------------------------------------------------
// Reference: y[n, oh, ow, co] = b[co] + sum_{ci, i, j} x[n, oh*stride - pad + i, ow*stride - pad + j, ci]
// * w[co, ci, i, j]; the backward kernels visit the same index pairs and move the product the other way.

namespace {
template <class F>
void for_each_tap(const Conv2dShape& s, F&& f) {
  for (int n = 0; n < s.n; ++n)
    for (int oh = 0; oh < s.h_out(); ++oh)
      for (int ow = 0; ow < s.w_out(); ++ow)
        for (int i = 0; i < s.kh; ++i)
          for (int j = 0; j < s.kw; ++j) {
            const int ih = oh * s.stride - s.pad + i, iw = ow * s.stride - s.pad + j;
            if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
            const size_t x_at = ((size_t(n) * s.h + ih) * s.w + iw) * s.c_in;
            const size_t y_at = ((size_t(n) * s.h_out() + oh) * s.w_out() + ow) * s.c_out;
            for (int co = 0; co < s.c_out; ++co)
              for (int ci = 0; ci < s.c_in; ++ci)
                f(x_at + ci, (((size_t(co) * s.c_in + ci) * s.kh + i) * s.kw + j), y_at + co);
          }
}

void scale_or_zero(double* p, size_t n, double beta) {
  for (size_t i = 0; i < n; ++i) p[i] = beta == 0.0 ? 0.0 : beta * p[i];
}
}  // namespace

void conv2d_forward_reference(const Conv2dShape& s, const double* x, const double* weight, const double* bias,
                              double* y) {
  const size_t rows = size_t(s.n) * s.h_out() * s.w_out();
  for (size_t r = 0; r < rows; ++r)
    for (int co = 0; co < s.c_out; ++co) y[r * s.c_out + co] = bias ? bias[co] : 0.0;
  for_each_tap(s, [&](size_t xi, size_t wi, size_t yi) { y[yi] += x[xi] * weight[wi]; });
}

void conv2d_backward_data_reference(const Conv2dShape& s, const double* dy, const double* weight, double* dx,
                                    double beta) {
  scale_or_zero(dx, size_t(s.n) * s.h * s.w * s.c_in, beta);
  for_each_tap(s, [&](size_t xi, size_t wi, size_t yi) { dx[xi] += dy[yi] * weight[wi]; });
}

void conv2d_backward_filter_reference(const Conv2dShape& s, const double* x, const double* dy, double* dweight,
                                      double* dbias, double beta) {
  scale_or_zero(dweight, size_t(s.c_out) * s.c_in * s.kh * s.kw, beta);
  for_each_tap(s, [&](size_t xi, size_t wi, size_t yi) { dweight[wi] += x[xi] * dy[yi]; });
  if (dbias) {
    scale_or_zero(dbias, size_t(s.c_out), beta);
    const size_t rows = size_t(s.n) * s.h_out() * s.w_out();
    for (size_t r = 0; r < rows; ++r)
      for (int co = 0; co < s.c_out; ++co) dbias[co] += dy[r * s.c_out + co];
  }
}

}  // namespace intl::cpu
