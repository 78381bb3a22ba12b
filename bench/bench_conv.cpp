// `intl bench conv`: times the CIFAR ResNet-18 backbone built directly from the conv-layer kernels (no tensor
// engine): forward in evaluation mode and forward + backward in training mode, at the given batch sizes; prints
// GFLOP/s against the machine's measured FP32 peak and sgemm rate, so that the kernels can be compared with
// PyTorch's oneDNN.
#include <immintrin.h>
#include <omp.h>

#include <malloc.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "bench/fp32_peak.h"
#include "bench/timing.h"
#include "cli/command.h"
#include "engine/allocator.h"
#include "engine/cpu/conv_kernels.h"
#include "engine/error.h"

namespace intl::cli {
namespace {

using cpu::Conv2dShape;
using cpu::NhwcShape;
// Wall time, or with --cpu-time the CPU time of the whole process: on a machine shared with other jobs the latter
// still measures the work done (use it with --threads 1, as spinning OpenMP threads would count too).
bool g_cpu_clock = false;

double now() {
  timespec ts;
  clock_gettime(g_cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}
double seconds_since(double t0) { return now() - t0; }

// ---------------------------------------------------------------------------------------------------------------
// The network: weights, statistics and every activation the backward reads, allocated once.

struct Conv {
  Conv2dShape s;
  float *weight, *dweight;
};

struct BatchNorm {
  NhwcShape s;
  float *gamma, *beta, *dgamma, *dbeta, *running_mean, *running_var, *mean, *invstd;
};

struct Block {
  Conv conv1, conv2, shortcut;  // shortcut.weight is null for the identity
  BatchNorm bn1, bn2, bn_shortcut;
  float *c1, *a1, *c2, *cs, *bs, *out;  // conv1, bn1+relu, conv2, shortcut conv, shortcut bn, block output
};

struct Timers {
  double conv_forward = 0, conv_backward_data = 0, conv_backward_filter = 0, batchnorm = 0, pool = 0;
};

struct ResNet18 {
  int n;
  std::mt19937 gen{1};
  Conv stem;
  BatchNorm stem_bn;
  float *input, *c0, *a0, *pooled, *dpooled;
  std::vector<Block> blocks;
  float* grad[5];  // backward scratch, each the size of the largest activation
  uint64_t version = 1;
  Timers t;
  std::vector<std::pair<float*, size_t>> owned;  // every buffer, freed by the destructor

  float* alloc_floats(size_t count) {
    float* p = static_cast<float*>(cpu_alloc(count * sizeof(float)));
    owned.emplace_back(p, count * sizeof(float));
    return p;
  }

  float* random_floats(size_t count, float scale) {
    float* p = alloc_floats(count);
    std::normal_distribution<float> dist(0.f, scale);
    for (size_t i = 0; i < count; ++i) p[i] = dist(gen);
    return p;
  }
  Conv make_conv(int c_in, int h, int c_out, int k, int stride) {
    Conv c{{n, c_in, h, h, c_out, k, k, stride, k / 2}, nullptr, nullptr};
    const size_t count = size_t(c_out) * c_in * k * k;
    c.weight = random_floats(count, std::sqrt(2.f / float(c_in * k * k)));
    c.dweight = alloc_floats(count);
    return c;
  }
  BatchNorm make_bn(const Conv& c) {
    BatchNorm b{{n, c.s.h_out(), c.s.w_out(), c.s.c_out}, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                nullptr, nullptr};
    const size_t ch = size_t(b.s.c);
    float** fields[] = {&b.gamma, &b.beta, &b.dgamma, &b.dbeta, &b.running_mean, &b.running_var, &b.mean, &b.invstd};
    for (float** f : fields) *f = alloc_floats(ch);
    std::fill(b.gamma, b.gamma + ch, 1.f);
    std::fill(b.beta, b.beta + ch, 0.f);
    std::fill(b.running_mean, b.running_mean + ch, 0.f);
    std::fill(b.running_var, b.running_var + ch, 1.f);
    return b;
  }
  static size_t out_count(const Conv& c) { return size_t(c.s.n) * c.s.h_out() * c.s.w_out() * c.s.c_out; }

  explicit ResNet18(int batch) : n(batch) {
    input = random_floats(size_t(n) * 32 * 32 * 3, 1.f);
    stem = make_conv(3, 32, 64, 3, 1);
    stem_bn = make_bn(stem);
    c0 = alloc_floats(out_count(stem));
    a0 = alloc_floats(out_count(stem));
    int c_in = 64, h = 32;
    for (int width : {64, 128, 256, 512})
      for (int i = 0; i < 2; ++i) {
        const int stride = (width != 64 && i == 0) ? 2 : 1;
        Block b{};
        b.conv1 = make_conv(c_in, h, width, 3, stride);
        b.conv2 = make_conv(width, b.conv1.s.h_out(), width, 3, 1);
        b.bn1 = make_bn(b.conv1);
        b.bn2 = make_bn(b.conv2);
        if (stride != 1 || c_in != width) {
          b.shortcut = make_conv(c_in, h, width, 1, stride);
          b.bn_shortcut = make_bn(b.shortcut);
          b.cs = alloc_floats(out_count(b.shortcut));
          b.bs = alloc_floats(out_count(b.shortcut));
        }
        b.c1 = alloc_floats(out_count(b.conv1));
        b.a1 = alloc_floats(out_count(b.conv1));
        b.c2 = alloc_floats(out_count(b.conv2));
        b.out = alloc_floats(out_count(b.conv2));
        blocks.push_back(b);
        c_in = width;
        h = b.conv1.s.h_out();
      }
    pooled = alloc_floats(size_t(n) * 512);
    dpooled = random_floats(size_t(n) * 512, 1.f / float(n));
    for (float*& g : grad) g = alloc_floats(out_count(stem));
  }

  ~ResNet18() {
    for (auto& [p, bytes] : owned) cpu_free(p, bytes);
  }
  ResNet18(const ResNet18&) = delete;
  ResNet18& operator=(const ResNet18&) = delete;

  std::vector<const Conv*> convs() const {
    std::vector<const Conv*> all{&stem};
    for (const Block& b : blocks) {
      all.push_back(&b.conv1);
      all.push_back(&b.conv2);
      if (b.shortcut.weight) all.push_back(&b.shortcut);
    }
    return all;
  }
  double forward_flops() const {
    double f = 0;
    for (const Conv* c : convs()) f += c->s.flops();
    return f;
  }
  // Backward-filter of every layer, backward-data of every layer but the stem (its input is the image).
  double backward_flops() const { return 2 * forward_flops() - stem.s.flops(); }

  template <class F>
  void timed(double& slot, F&& f) {
    const auto t0 = now();
    f();
    slot += seconds_since(t0);
  }
  void conv_forward(const Conv& c, const float* x, float* y) {
    timed(t.conv_forward, [&] { cpu::conv2d_forward(c.s, x, c.weight, version, nullptr, y); });
  }
  void bn_forward(const BatchNorm& b, bool train, const float* x, const float* residual, bool relu, float* y) {
    timed(t.batchnorm, [&] {
      if (train)
        cpu::batchnorm2d_forward_train(b.s, x, b.gamma, b.beta, residual, relu, 1e-5f, 0.1f, y, b.mean, b.invstd,
                                       b.running_mean, b.running_var);
      else
        cpu::batchnorm2d_forward_eval(b.s, x, b.gamma, b.beta, residual, relu, 1e-5f, b.running_mean,
                                      b.running_var, y);
    });
  }

  void forward(bool train) {
    conv_forward(stem, input, c0);
    bn_forward(stem_bn, train, c0, nullptr, true, a0);
    const float* x = a0;
    for (Block& b : blocks) {
      conv_forward(b.conv1, x, b.c1);
      bn_forward(b.bn1, train, b.c1, nullptr, true, b.a1);
      conv_forward(b.conv2, b.a1, b.c2);
      const float* residual = x;
      if (b.shortcut.weight) {
        conv_forward(b.shortcut, x, b.cs);
        bn_forward(b.bn_shortcut, train, b.cs, nullptr, false, b.bs);
        residual = b.bs;
      }
      bn_forward(b.bn2, train, b.c2, residual, true, b.out);
      x = b.out;
    }
    timed(t.pool, [&] { cpu::avgpool2d_global_forward(blocks.back().bn2.s, x, pooled); });
  }

  void conv_backward(const Conv& c, const float* x, const float* dy, float* dx, float beta) {
    timed(t.conv_backward_filter, [&] { cpu::conv2d_backward_filter(c.s, x, dy, c.dweight, nullptr, 0.f); });
    if (dx) timed(t.conv_backward_data, [&] { cpu::conv2d_backward_data(c.s, dy, c.weight, version, dx, beta); });
  }
  void bn_backward(const BatchNorm& b, const float* x, const float* y, const float* dy, float* dx, float* dres) {
    timed(t.batchnorm, [&] {
      cpu::batchnorm2d_backward_train(b.s, x, y, dy, b.gamma, b.mean, b.invstd, dx, b.dgamma, b.dbeta, dres, 0.f);
    });
  }

  // Gradients flow through five scratch buffers: A holds the gradient of a block's output, E receives that of its
  // input; the shortcut's and the main path's contributions meet in E (backward-data with beta = 1).
  void backward() {
    float *A = grad[0], *B = grad[1], *C = grad[2], *D = grad[3], *E = grad[4];
    timed(t.pool, [&] { cpu::avgpool2d_global_backward(blocks.back().bn2.s, dpooled, A, 0.f); });
    for (size_t i = blocks.size(); i-- > 0;) {
      Block& b = blocks[i];
      const float* x = i == 0 ? a0 : blocks[i - 1].out;
      const bool projected = b.shortcut.weight != nullptr;
      bn_backward(b.bn2, b.c2, b.out, A, B, projected ? D : E);
      conv_backward(b.conv2, b.a1, B, C, 0.f);
      if (projected) {
        bn_backward(b.bn_shortcut, b.cs, nullptr, D, A, nullptr);
        conv_backward(b.shortcut, x, A, E, 0.f);
      }
      bn_backward(b.bn1, b.c1, b.a1, C, D, nullptr);
      conv_backward(b.conv1, x, D, E, 1.f);
      std::swap(A, E);
    }
    bn_backward(stem_bn, c0, a0, A, B, nullptr);
    conv_backward(stem, input, B, nullptr, 0.f);
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Options {
  std::vector<int> batches{32, 256};
  int reps = 5, warmup = 2, threads = 0;
  std::string kernels = "fastest";
  bool direct = false, breakdown = false, layers = false, cpu_time = false;
};

cpu::ConvKernels kernels_named(const std::string& name) {
  if (name == "direct") return cpu::ConvKernels::direct;
  if (name == "gemm") return cpu::ConvKernels::gemm;
  if (name == "winograd") return cpu::ConvKernels::winograd;
  return cpu::ConvKernels::fastest;
}

const char* kernels_described(const std::string& name) {
  if (name == "direct") return "oneDNN direct";
  if (name == "gemm") return "im2col + sgemm";
  if (name == "winograd") return "Winograd F(4x4, 3x3) wherever it applies, direct elsewhere";
  return "AVX-512: Winograd 3x3/s1 + direct; AVX2: Winograd F(4x4, 3x3), im2col + sgemm and direct by layer";
}

// Bytes glibc holds from the system (heap arenas and mmapped blocks).
size_t heap_bytes() {
  const struct mallinfo2 mi = mallinfo2();
  return mi.arena + mi.hblkhd;
}

void print_breakdown(const Timers& t, int iterations) {
  const double k = 1e3 / iterations;
  std::printf("    per iteration: conv fwd %.1f ms, conv bwd-data %.1f ms, conv bwd-filter %.1f ms, batch-norm %.1f ms,"
              " pool %.1f ms\n",
              t.conv_forward * k, t.conv_backward_data * k, t.conv_backward_filter * k, t.batchnorm * k, t.pool * k);
}

// Each distinct convolution of the network alone, per pass: median milliseconds and GFLOP/s.
void time_layers(const ResNet18& net, const Options& o) {
  std::vector<Conv2dShape> shapes;
  for (const Conv* c : net.convs()) {
    const Conv2dShape& s = c->s;
    const bool seen = std::any_of(shapes.begin(), shapes.end(), [&](const Conv2dShape& t) {
      return t.c_in == s.c_in && t.h == s.h && t.c_out == s.c_out && t.kh == s.kh && t.stride == s.stride;
    });
    if (!seen) shapes.push_back(s);
  }
  std::mt19937 gen(3);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::printf("    per layer (n, c_in, h, w -> c_out, kernel, stride): median ms and GFLOP/s of forward, data gradient, "
              "filter gradient\n");
  for (const Conv2dShape& s : shapes) {
    const size_t xs = size_t(s.n) * s.h * s.w * s.c_in, ys = size_t(s.n) * s.h_out() * s.w_out() * s.c_out;
    const size_t ws = size_t(s.c_out) * s.c_in * s.kh * s.kw;
    std::vector<float> x(xs), dx(xs), y(ys), dy(ys), w(ws), dw(ws);
    for (auto* v : {&x, &dy, &w})
      for (float& e : *v) e = dist(gen);
    double ms[3];
    for (int pass = 0; pass < 3; ++pass) {
      std::vector<double> times;
      for (int i = 0; i < o.warmup + o.reps; ++i) {
        const double t0 = now();
        // A new weight version every run, as after every optimizer step: a kernel's weight copy is timed too.
        const uint64_t version = uint64_t(i) + 1;
        if (pass == 0) cpu::conv2d_forward(s, x.data(), w.data(), version, nullptr, y.data());
        if (pass == 1) cpu::conv2d_backward_data(s, dy.data(), w.data(), version, dx.data(), 0.f);
        if (pass == 2) cpu::conv2d_backward_filter(s, x.data(), dy.data(), dw.data(), nullptr, 0.f);
        if (i >= o.warmup) times.push_back(seconds_since(t0));
      }
      ms[pass] = median(times) * 1e3;
    }
    const double gf = s.flops() / 1e6;
    std::printf("    %4d %4d %3d %3d -> %4d  %dx%d/%d   fwd %7.2f ms %5.0f   data %7.2f ms %5.0f   filter %7.2f ms %5.0f\n",
                s.n, s.c_in, s.h, s.w, s.c_out, s.kh, s.kw, s.stride, ms[0], gf / ms[0], ms[1], gf / ms[1], ms[2],
                gf / ms[2]);
  }
}

void run(const Options& o) {
  configure_process_memory();
  if (o.threads > 0) omp_set_num_threads(o.threads);
  g_cpu_clock = o.cpu_time;
  const int threads = omp_get_max_threads();
  cpu::conv2d_set_kernels(kernels_named(o.kernels));
  const char* isa = "";
  const double peak = bench::measure_fp32_peak(threads, &isa), sgemm = bench::measure_sgemm_peak();
  std::printf("conv-layer kernels: CIFAR ResNet-18 backbone (NHWC activations, %s convolutions), %d threads, %s time\n",
              kernels_described(o.kernels), threads, o.cpu_time ? "CPU" : "wall");
  std::printf("measured FP32 peak: %.0f GFLOP/s (%s FMA, %d threads, %.0f per thread); sgemm 2048^3: %.0f GFLOP/s\n",
              peak, isa, threads, peak / threads, sgemm);
  // On a machine shared with other jobs, spinning OpenMP threads lose their time slices at every barrier:
  // OMP_WAIT_POLICY=passive was 3-4x faster at batch 32 under load (and costs little on an idle machine).
  const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
  std::printf("OMP_WAIT_POLICY=%s, load average %s\n", wait_policy ? wait_policy : "(unset)", bench::load_average().c_str());
  for (const int batch : o.batches) {
    ResNet18 net(batch);
    const double fwd_flops = net.forward_flops(), train_flops = fwd_flops + net.backward_flops();
    std::vector<double> fwd, train;
    for (int i = 0; i < o.warmup + o.reps; ++i) {
      if (i == o.warmup) net.t = Timers{};
      const auto t0 = now();
      net.forward(false);
      if (i >= o.warmup) fwd.push_back(seconds_since(t0));
    }
    const Timers fwd_timers = net.t;
    size_t heap_before = 0, allocs_before = 0;
    for (int i = 0; i < o.warmup + o.reps; ++i) {
      if (i == o.warmup) {
        net.t = Timers{};
        heap_before = heap_bytes();
        allocs_before = cpu_allocator_stats().system_allocs;
      }
      ++net.version;  // an optimizer step changed every weight
      const auto t0 = now();
      net.forward(true);
      net.backward();
      if (i >= o.warmup) train.push_back(seconds_since(t0));
    }
    const double f = median(fwd), tr = median(train);
    std::printf("batch %4d  forward (eval)     %8.1f ms  %7.1f img/s  %6.0f GFLOP/s "
                "(%4.1f%% of peak, %3.0f%% of sgemm)\n",
                batch, f * 1e3, batch / f, fwd_flops / f / 1e9, 100 * fwd_flops / f / 1e9 / peak,
                100 * fwd_flops / f / 1e9 / sgemm);
    if (o.breakdown) print_breakdown(fwd_timers, o.reps);
    std::printf("batch %4d  forward + backward %8.1f ms  %7.1f img/s  %6.0f GFLOP/s "
                "(%4.1f%% of peak, %3.0f%% of sgemm)\n",
                batch, tr * 1e3, batch / tr, train_flops / tr / 1e9, 100 * train_flops / tr / 1e9 / peak,
                100 * train_flops / tr / 1e9 / sgemm);
    if (o.breakdown) print_breakdown(net.t, o.reps);
    if (o.layers) time_layers(net, o);
    std::printf("            timed training runs: heap grew by %zu bytes, %zu new system allocations\n",
                heap_bytes() - heap_before, cpu_allocator_stats().system_allocs - allocs_before);
    std::printf("            (%.3f GFLOP per image forward, %.3f forward + backward; medians of %d runs)\n",
                fwd_flops / batch / 1e9, train_flops / batch / 1e9, o.reps);
  }
  const AllocatorStats st = cpu_allocator_stats();
  std::printf("allocator: peak %.0f MB, %zu system allocations\n", st.peak_bytes / 1e6, st.system_allocs);
}

}  // namespace

void add_bench_conv(CLI::App& bench) {
  auto opts = std::make_shared<Options>();
  CLI::App* cmd = bench.add_subcommand("conv", "Time the conv-layer kernels on the CIFAR ResNet-18 backbone");
  cmd->add_option("--batch", opts->batches, "batch sizes")->capture_default_str();
  cmd->add_option("--reps", opts->reps, "timed runs per measurement (the median is reported)")->check(CLI::Range(1, 1000000));
  cmd->add_option("--warmup", opts->warmup, "untimed runs first")->check(non_negative());
  cmd->add_option("--threads", opts->threads, "OpenMP threads (0: OMP_NUM_THREADS or all cores)")
      ->check(non_negative());
  cmd->add_option("--kernels", opts->kernels,
                  "convolution kernels: fastest (per layer and ISA), direct (oneDNN's direct only), gemm (im2col + "
                  "sgemm everywhere), winograd (ours wherever it applies)")
      ->check(CLI::IsMember({"fastest", "direct", "gemm", "winograd"}))
      ->capture_default_str();
  cmd->add_flag("--direct", opts->direct, "the same as --kernels direct");
  cmd->add_flag("--layers", opts->layers, "time each distinct convolution alone, per pass");
  cmd->add_flag("--breakdown", opts->breakdown, "time per kernel family as well");
  cmd->add_flag("--cpu-time", opts->cpu_time, "report process CPU time, not wall time (loaded machines; --threads 1)");
  cmd->callback([opts] {
    for (int b : opts->batches)
      if (b < 2) throw UsageError("bench conv: --batch values must be at least 2 (batch-norm), got " + std::to_string(b));
    if (opts->direct) opts->kernels = "direct";
    run(*opts);
  });
}

}  // namespace intl::cli
