// The training-step benchmark. Reports the median step, the rate in images per second (both views counted),
// the arithmetic rate from the network's FLOPs beside the machine's FP32 peak (an FMA loop on every thread) and
// OpenBLAS's sgemm 2048^3, both measured in the same run, peak resident memory (getrusage), and the CPU
// allocator's system allocations after the first step and at the end: a step that reuses its memory leaves them
// equal. --forward-only times the backbone's forward pass alone (eval mode, no gradients, one view), as the
// PyTorch peer's inference figure.
#include "bench/bench_train.h"

#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/fp32_peak.h"
#include "bench/timing.h"
#include "cli/command.h"
#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/conv_algorithms.h"
#include "engine/cuda/allocator.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/optim/optimizer.h"
#include "engine/precision.h"
#include "losses/intl_loss.h"
#include "train/ssl_model.h"

namespace intl::bench {
namespace {

struct Options {
  std::string arch = "resnet18-cifar";
  int64_t batch = 0;  // 0: the architecture's default
  int steps = 5;
  int64_t base_width = 64;
  int image_size = 0;
  bool forward_only = false;
  int profile_steps = 0;
  IntlLossForm loss_form = IntlLossForm::automatic;
  std::string bf16_activations = "on";
  cli::CommonOptions common;
};

// The benchmarked networks: the CIFAR ResNet-18 of the CIFAR studies and the ImageNet ResNet-50 of the
// paper's ImageNet runs, each with its projector.
struct Arch {
  const char* name;
  const char* backbone;  // ResNetConfig arch
  const char* stem;      // cifar | imagenet
  std::vector<int64_t> projector;
  int64_t batch;  // defaults when --batch / --image-size are not given
  int image_size;
};
const Arch kArchs[] = {
    {"resnet18-cifar", "resnet18", "cifar", {2048, 2048, 2048}, 256, 32},
    {"resnet50-imagenet", "resnet50", "imagenet", {8192, 8192, 8192}, 128, 224},
};

const Arch& find_arch(const std::string& name) {
  for (const Arch& a : kArchs)
    if (name == a.name) return a;
  throw UsageError("bench train: --arch must be resnet18-cifar or resnet50-imagenet, found '" + name + "'");
}

// Forward FLOPs (2 per multiply-add) of one image through the backbone and the projector: convolutions and
// linear layers, with batch norm, ReLU and pooling left out (under 1%). torchvision's layouts: BasicBlocks
// [2, 2, 2, 2] for ResNet-18, Bottlenecks [3, 4, 6, 3] (stride on the 3 x 3) for ResNet-50; the CIFAR stem is
// a 3 x 3 convolution at stride 1 without max pooling, the ImageNet one 7 x 7 at stride 2 then a stride-2 max
// pool. CIFAR ResNet-18 at width 64 and 32 x 32: 1.11 GFLOP (backbone); ResNet-50 at 224 x 224: 8.2 GFLOP.
double forward_flops_per_image(const Arch& arch, int64_t w, int64_t side, const std::vector<int64_t>& projector) {
  auto conv = [](double c_in, double c_out, double k, double out_side) {
    return 2.0 * c_in * c_out * k * k * out_side * out_side;
  };
  const bool bottleneck = std::string(arch.backbone) == "resnet50";
  const bool imagenet_stem = std::string(arch.stem) == "imagenet";
  const int blocks[4] = {bottleneck ? 3 : 2, bottleneck ? 4 : 2, bottleneck ? 6 : 2, bottleneck ? 3 : 2};
  double s = double(side), c = double(w);
  double flops = 0;
  if (imagenet_stem) {
    s = std::ceil(s / 2);
    flops += conv(3, c, 7, s);
    s = std::ceil(s / 2);  // max pool
  } else {
    flops += conv(3, c, 3, s);
  }
  for (int stage = 0; stage < 4; ++stage) {
    const double width = double(w) * (1 << stage);
    const double c_out = bottleneck ? 4 * width : width;
    for (int b = 0; b < blocks[stage]; ++b) {
      const double s_out = (stage > 0 && b == 0) ? std::ceil(s / 2) : s;
      if (bottleneck)
        flops += conv(c, width, 1, s) + conv(width, width, 3, s_out) + conv(width, c_out, 1, s_out);
      else
        flops += conv(c, c_out, 3, s_out) + conv(c_out, c_out, 3, s_out);
      if (b == 0 && (s_out != s || c != c_out)) flops += conv(c, c_out, 1, s_out);  // downsample
      c = c_out;
      s = s_out;
    }
  }
  double in = c;
  for (int64_t width : projector) {
    flops += 2.0 * in * double(width);
    in = double(width);
  }
  return flops;
}

double peak_rss_mb() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;  // Linux reports kilobytes
}

long minor_page_faults() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

void run(Options o) {
  const Arch& arch = find_arch(o.arch);
  if (o.batch == 0) o.batch = arch.batch;
  if (o.image_size == 0) o.image_size = arch.image_size;
  if (o.batch < 2 || o.steps < 1) throw UsageError("bench train: --batch must be >= 2 and --steps >= 1");
  if (o.image_size < 8) throw UsageError("bench train: --image-size must be >= 8");
  const Device device = resolve_device(o.common.device);
  o.loss_form = resolve_intl_loss_form(o.loss_form, device);
  train::SslModelConfig config;
  config.arch = arch.backbone;
  config.stem = arch.stem;
  config.projector = arch.projector;
  config.base_width = o.base_width;
  config.seed = o.common.seed;
  train::SslModel model(config);
  model.to(device);
  model.train();
  std::vector<NamedTensor> params;
  for (auto& [name, t] : model.named_parameters()) params.push_back({name, t});
  Sgd sgd(params, SgdOptions{0.9, 1e-4, false, true});
  const Shape shape{o.batch, o.image_size, o.image_size, 3};  // (N, H, W, 3): NHWC
  const Tensor x1 = Tensor::randn(shape, o.common.seed, 11, DType::f32, device);
  const Tensor x2 = Tensor::randn(shape, o.common.seed, 12, DType::f32, device);
  const double beta = intl_beta(o.batch);
  double first_loss = 0, last_loss = 0;
  bool first = true;
  if (o.forward_only) model.backbone().eval();
  // On a GPU, the host's time to issue a step (everything before the loss is read back, which waits for the
  // device): near the whole step, the GPU waits on the host; far below it, the host waits on the GPU. (A step
  // that waits inside, as the spectral loss form does for the eigensolver's status, counts that wait too.)
  std::vector<double> issue_ms;
  auto step = [&] {
    const auto t0 = std::chrono::steady_clock::now();
    if (o.forward_only) {
      NoGradGuard no_grad;
      Tensor m = mean(model.backbone().forward(x1));
      issue_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      last_loss = m.item();  // the features' mean, read back as a loss would be
    } else {
      sgd.zero_grad();
      Tensor loss = train::intl_two_view_loss(model, x1, x2, 4, beta, o.loss_form);
      loss.backward();
      sgd.step(0.05);
      issue_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      last_loss = loss.item();
    }
    if (first) first_loss = last_loss;
    first = false;
  };
  const bool gpu = device == Device::cuda;
  auto allocator = [gpu] { return gpu ? cuda_allocator_stats() : cpu_allocator_stats(); };
  // Two warm-up steps: the first fills caches and chooses kernels; from the second on, what a step still holds
  // of the one before (a loss's saved tensors until the next replaces them) is part of the pattern, so the
  // second may take a block or two from the system that no later step needs.
  step();
  step();
  const AllocatorStats after_warmup = allocator();
  issue_ms.clear();
  const long faults_before = minor_page_faults();
  const Timing t = time_median(step, 0, o.steps, 0.0);
  const long faults = minor_page_faults() - faults_before;
  const AllocatorStats at_end = allocator();

  // Backward costs twice the forward (data and filter gradients). Forward only: the backbone alone.
  const double per_image = o.forward_only
                               ? forward_flops_per_image(arch, o.base_width, o.image_size, {})
                               : 3.0 * forward_flops_per_image(arch, o.base_width, o.image_size, config.projector);
  const double images_per_s = (o.forward_only ? 1.0 : 2.0) * double(o.batch) / (t.median_ms * 1e-3);
  const char* isa = "";
  const double peak = gpu ? 0.0 : measure_fp32_peak(omp_get_max_threads(), &isa);
  std::string projector;
  for (int64_t width : config.projector) projector += "-" + std::to_string(width);
  std::string precision =
      o.common.precision == "bf16" && device == Device::cuda
          ? std::string("bf16 GEMMs and convolutions, ") +
                (o.bf16_activations == "on" ? "bf16 activations" : "fp32 activations") +
                ", fp32 master weights and loss"
          : "float32";
  if (gpu) precision += std::string(", cuDNN algorithms ") + conv_algo_search_name(conv_algo_search());
  if (o.forward_only)
    std::printf("intl bench train: %s (base width %lld) backbone forward only (eval mode, no gradients), batch %lld, "
                "%dx%d NHWC, %s, device %s, threads %d\n",
                o.arch.c_str(), (long long)o.base_width, (long long)o.batch, o.image_size, o.image_size,
                precision.c_str(), device_name(device), omp_get_max_threads());
  else
    std::printf("intl bench train: %s (base width %lld) + projector %lld%s, INTL loss (%s, T=4) + SGD step, "
                "batch %lld x 2 views, %dx%d NHWC, %s, device %s, threads %d\n",
                o.arch.c_str(), (long long)o.base_width, (long long)model.backbone().feature_dim(),
                projector.c_str(), intl_loss_form_name(o.loss_form), (long long)o.batch, o.image_size, o.image_size,
                precision.c_str(), device_name(device), omp_get_max_threads());
  if (gpu) std::printf("gpu: %s\n", cuda_device_name().c_str());
  const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
  std::printf("OMP_WAIT_POLICY=%s, load average %s\n", wait_policy ? wait_policy : "(unset)", load_average().c_str());
  std::printf("steps: %d timed after 2 warm-up; median %.1f ms, min %.1f ms; loss %.6g -> %.6g\n", t.reps,
              t.median_ms, t.min_ms, first_loss, last_loss);
  if (gpu) {
    std::sort(issue_ms.begin(), issue_ms.end());
    const double issue = issue_ms[issue_ms.size() / 2];
    std::printf("host_issue_ms: median %.1f to issue a step before reading its loss (%.0f%% of the median step: "
                "%s)\n",
                issue, 100.0 * issue / t.median_ms,
                issue > 0.8 * t.median_ms ? "the GPU waits on the host" : "the host waits on the GPU");
  }
  std::printf("peak_rss_mb: %.0f\n", peak_rss_mb());
  // Page faults are expensive on virtual machines: a step that reuses its memory touches no new pages.
  std::printf("page_faults: %.1f minor faults per timed step (%ld in %d steps)\n", double(faults) / t.reps, faults,
              t.reps);
  std::printf("system_allocs: %zu after the warm-up, %zu at the end%s%s\n", after_warmup.system_allocs,
              at_end.system_allocs, gpu ? " (cudaMalloc calls)" : "",
              at_end.system_allocs == after_warmup.system_allocs ? " (the step allocates nothing new)"
                                                                  : " (GREW: the step allocates from the system)");
  const ConvSearchStats search = conv_search_stats();
  if (search.passes > 0)
    std::printf("conv_search: %s\n%s", conv_search_summary(search).c_str(),
                conv_search_slowest(conv_search_passes(), 8).c_str());
  if (gpu)
    std::printf("device_memory_mb: peak %.0f in tensors and workspaces, %.0f cached at the end\n",
                double(at_end.peak_bytes) / (1 << 20), double(at_end.cached_bytes) / (1 << 20));
  const double achieved = images_per_s * per_image / 1e9;
  const double sgemm = gpu ? 0.0 : measure_sgemm_peak();  // after peak_rss_mb: its 48 MB would count there
  if (gpu)
    std::printf("gflop_per_s: %.1f (%.2f GFLOP per image per %s)\n", achieved, per_image / 1e9,
                o.forward_only ? "backbone forward" : "training step");
  else
    std::printf("gflop_per_s: %.1f of a measured FP32 peak of %.0f (%.1f%%; %s FMA loop, %d threads) and of sgemm "
                "2048^3 here %.0f (%.0f%%); %.2f GFLOP per image per %s\n",
                achieved, peak, 100.0 * achieved / peak, isa, omp_get_max_threads(), sgemm, 100.0 * achieved / sgemm,
                per_image / 1e9, o.forward_only ? "backbone forward" : "training step");
  if (!o.forward_only && std::string(arch.stem) == "cifar")  // 50,000 images, two views each
    std::printf("cifar_epoch_s: %.2f (50,000 images x 2 views at this rate)\n", 100000.0 / images_per_s);
  std::printf("images_per_s: %.1f\n", images_per_s);

  print_profile(step, o.profile_steps, t.median_ms);
}

}  // namespace

void add_bench_train(CLI::App& bench) {
  auto o = std::make_shared<Options>();
  auto* cmd = bench.add_subcommand("train", "INTL pre-training step: ResNet + projector + loss + SGD");
  cmd->add_option("--arch", o->arch, "resnet18-cifar (batch 256, 32 x 32, projector 2048^3) | resnet50-imagenet "
                                     "(batch 128, 224 x 224, projector 8192^3)")
      ->capture_default_str();
  cmd->add_option("--batch", o->batch, "images per view (default: the architecture's)")->check(CLI::Range(2, 1 << 16));
  cmd->add_option("--steps", o->steps, "timed steps (after two warm-up steps)")->capture_default_str();
  cmd->add_option("--base-width", o->base_width, "channels of the stem and layer1 (64: ResNet-18)")
      ->capture_default_str();
  cmd->add_option("--image-size", o->image_size, "side of the random views (default: the architecture's)")
      ->check(CLI::Range(8, 4096));
  cmd->add_flag("--forward-only", o->forward_only,
                "time the backbone's forward pass alone (eval mode, no gradients, one view of --batch images)");
  cmd->add_option("--profile", o->profile_steps,
                  "then run N more steps with every backend primitive synchronised and timed, and print where "
                  "their time goes")
      ->check(CLI::Range(0, 100000));
  cmd->add_option("--bf16-activations", o->bf16_activations,
                  "under --precision bf16 on a GPU: hold the backbone's activations in bfloat16 (on, as PyTorch's "
                  "autocast) or in float32 with each convolution's operands rounded into copies (off)")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  cli::add_loss_form_option(*cmd, o->loss_form);
  cli::add_common_options(*cmd, o->common);
  cmd->remove_option(cmd->get_option("--out"));  // a benchmark prints its figures and writes no files
  cmd->callback([o] {
    set_bf16_activations(o->bf16_activations == "on");
    run(*o);
  });
}

}  // namespace intl::bench
