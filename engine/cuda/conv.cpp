// 2-D convolution on cuDNN's legacy API (cuDNN 9 still ships it in libcudnn_cnn). One plan per shape, dtype,
// precision and search (engine/conv_algorithms.h) holds the descriptors and the algorithm of each pass, chosen
// once: by cuDNN's heuristics (the default), or by timing every algorithm on the shape (--conv-algo measured |
// fastest). Deterministic algorithms first unless `fastest`, so a fixed seed gives fixed results; in fp32 true
// float32 FMA algorithms, TF32 tensor cores only where cuDNN offers none, said once on stderr. Workspaces,
// and a timed search's scratch operands, come from our allocator.
//
// Activations are NHWC (the engine's image layout) and cuDNN sees the weights as KRSC (O, kh, kw, I), the
// layout its NHWC tensor-core kernels are written for and the one PyTorch pairs with channels-last activations
// (whether cuDNN 9 serves a mixed NHWC / OIHW call as well is not measured here). Parameters stay OIHW, as
// PyTorch stores them, so checkpoints and the CPU need no reorder: each pass reads a KRSC copy of the weight,
// kept while the weight's version stands (the forward and backward-data passes of a step relayout it once),
// and the filter gradient is computed in KRSC and relaid into the OIHW gradient.
//
// float64 (a reference path: tests and gradient checks, never training) runs in NCHW instead, as PyTorch runs
// it: cuDNN documents no NHWC algorithm for double data. Its activations are permuted into NCHW copies and the
// results back, and the OIHW weight is cuDNN's NCHW filter as it stands.
//
// --precision bf16 on float32 tensors runs each pass in cuDNN's BFLOAT16 configuration (bfloat16 operands,
// float accumulation), as PyTorch's autocast does around a convolution: the activations are rounded to bfloat16
// copies, the weight's KRSC copy is bfloat16, and the result is converted back to float32. Each operand is
// rounded once per step: the forward's copy of x serves the filter gradient, and the backward-data pass's copy of
// dy the backward-filter one (Conv2dArgs::saved). A pass cuDNN cannot run that way runs in float32 on TF32
// tensor cores instead, which is said once on stderr.
//
// bfloat16 tensors (a network's activations under --precision bf16, engine/precision.h) are the same
// configuration without the copies: x, y, dy and dx are read and written where they lie, beside float32
// weights (their KRSC copy bfloat16; the filter gradient comes out of cuDNN in bfloat16, as autocast's does, and
// is widened to the float32 gradient, so the two views' gradients add in float32). A pass cuDNN runs no bfloat16
// algorithm for widens its operands to float32 copies and rounds its result back. Such convolutions take no bias.
//
// An algorithm cuDNN offers but then refuses, at its workspace query or when run, is passed over for the next.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "engine/cuda/allocator.h"
#include "engine/cuda/check.h"
#include "engine/cuda/context.h"
#include "engine/cuda/entry.h"
#include "engine/cuda/kernels.h"
#include "engine/conv_algorithms.h"

namespace intl {
// What a bf16 convolution's passes share (Conv2dArgs::saved): the bfloat16 copy of x made by the forward for
// the filter gradient (when args.keep_input), and that of dy made by the backward-data pass for the
// backward-filter one. Each names the tensor it copies by address and version.
struct ConvSaved {
  struct Copy {
    const void* of = nullptr;
    uint64_t version = 0;
    std::unique_ptr<cuda::DeviceBuffer> data;
  };
  Copy x, dy;
};
}  // namespace intl

namespace intl::cuda {
namespace {

// The layouts, in one place: NHWC activations and KRSC weight copies. cuDNN's descriptors keep the logical
// (n, c, h, w) / (k, c, r, s) order of dimensions; the format says how they lie in memory.
constexpr cudnnTensorFormat_t kLayout = CUDNN_TENSOR_NHWC;
constexpr cudnnTensorFormat_t kWeightLayout = CUDNN_TENSOR_NHWC;

// The layouts of a plan's descriptors in dtype `t`: NHWC / KRSC, or NCHW / OIHW for float64.
cudnnTensorFormat_t layout_for(cudnnDataType_t t) { return t == CUDNN_DATA_DOUBLE ? CUDNN_TENSOR_NCHW : kLayout; }
cudnnTensorFormat_t weight_layout_for(cudnnDataType_t t) {
  return t == CUDNN_DATA_DOUBLE ? CUDNN_TENSOR_NCHW : kWeightLayout;
}

// One pass (forward, backward data, backward filter): its descriptor (carrying the math type) and algorithm.
template <class Algo> struct Pass {
  cudnnConvolutionDescriptor_t conv = nullptr;
  Algo algo{};
  size_t workspace = 0;
  bool chosen = false;
  bool low = false;             // runs on the bfloat16 descriptors
  // Refused by cuDNN for this shape after the heuristics offered them, each with the descriptors it was refused
  // on (bfloat16 or not): one refused in bfloat16 may still run in float32.
  std::vector<std::pair<Algo, bool>> rejected;

  // The chosen algorithm refused: passed over from now on (in its precision), and the pass is to be chosen again.
  void reject() {
    rejected.emplace_back(algo, low);
    chosen = low = false;
    workspace = 0;
  }
};

// The operands' descriptors in one data type: x (n, c_in, h, w), y (n, c_out, h_out, w_out), w (KRSC).
struct Descriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
};

struct Plan {
  Descriptors full;  // in the tensors' own dtype
  Descriptors low;   // bfloat16 twins (bf16 plans only)
  cudnnTensorDescriptor_t bias = nullptr;
  bool bf16 = false;
  Pass<cudnnConvolutionFwdAlgo_t> forward;
  Pass<cudnnConvolutionBwdDataAlgo_t> backward_data;
  Pass<cudnnConvolutionBwdFilterAlgo_t> backward_filter;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  bool strict = false;  // float32 without tensor cores: only FMA-math algorithms
  bool nchw = false;    // float64: NCHW activations, OIHW filter
  ConvAlgoSearch search = ConvAlgoSearch::heuristic;  // how its passes choose (engine/conv_algorithms.h)
  const Descriptors& at(bool on_low) const { return on_low ? low : full; }
};

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, int, int>;

std::string shape_of(const Conv2dArgs& a) {
  return "x (" + std::to_string(a.n) + ", " + std::to_string(a.c_in) + ", " + std::to_string(a.h) + ", " +
         std::to_string(a.w) + "), weight (" + std::to_string(a.c_out) + ", " + std::to_string(a.c_in) + ", " +
         std::to_string(a.kh) + ", " + std::to_string(a.kw) + "), stride " + std::to_string(a.stride) + ", pad " +
         std::to_string(a.pad);
}

cudnnTensorDescriptor_t make_tensor(cudnnDataType_t t, int64_t n, int64_t c, int64_t h, int64_t w) {
  cudnnTensorDescriptor_t d;
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, layout_for(t), t, int(n), int(c), int(h), int(w)));
  return d;
}

Descriptors make_descriptors(const Conv2dArgs& a, cudnnDataType_t t) {
  Descriptors d;
  d.x = make_tensor(t, a.n, a.c_in, a.h, a.w);
  d.y = make_tensor(t, a.n, a.c_out, a.h_out(), a.w_out());
  CUDNN_CHECK(cudnnCreateFilterDescriptor(&d.w));
  CUDNN_CHECK(
      cudnnSetFilter4dDescriptor(d.w, t, weight_layout_for(t), int(a.c_out), int(a.c_in), int(a.kh), int(a.kw)));
  return d;
}

cudnnConvolutionDescriptor_t make_conv(const Conv2dArgs& a, cudnnDataType_t t, cudnnMathType_t math) {
  cudnnConvolutionDescriptor_t c;
  CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&c));
  CUDNN_CHECK(cudnnSetConvolution2dDescriptor(c, int(a.pad), int(a.pad), int(a.stride), int(a.stride), 1, 1,
                                              CUDNN_CROSS_CORRELATION, t));
  CUDNN_CHECK(cudnnSetConvolutionMathType(c, math));
  return c;
}

// Plans live for the process (descriptors are a few hundred bytes each; shapes are few).
Plan& plan_for(const Conv2dArgs& a, DType dtype) {
  static std::mutex mutex;
  static auto* plans = new std::map<Key, std::unique_ptr<Plan>>();
  const bool bf16 = a.bf16;
  const ConvAlgoSearch search = conv_algo_search();
  const Key key{a.n, a.c_in, a.h, a.w, a.c_out, a.kh, a.kw, a.stride, a.pad, int(dtype), int(bf16), int(search)};
  std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<Plan>& p = (*plans)[key];
  if (p) return *p;
  INTL_CHECK(dtype == DType::f32 || dtype == DType::f64 || dtype == DType::bf16, std::string("conv2d on ") +
                                                                                 dtype_name(dtype));
  for (int64_t v : {a.n, a.c_in, a.h, a.w, a.c_out, a.kh, a.kw, a.stride, a.pad})
    INTL_CHECK(v >= 0 && v <= 0x7fffffff, "conv2d: an extent exceeds cuDNN's 32-bit limit in " + shape_of(a));
  auto plan = std::make_unique<Plan>();
  const cudnnDataType_t t = dtype == DType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  plan->strict = dtype == DType::f32 && !bf16;
  plan->math = plan->strict ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;  // DEFAULT allows TF32 tensor cores
  plan->full = make_descriptors(a, t);
  plan->bias = make_tensor(t, 1, a.c_out, 1, 1);
  plan->bf16 = dtype == DType::bf16 || (dtype == DType::f32 && bf16);
  plan->nchw = dtype == DType::f64;
  plan->search = search;
  if (plan->bf16) plan->low = make_descriptors(a, CUDNN_DATA_BFLOAT16);
  plan->forward.conv = make_conv(a, t, plan->math);
  plan->backward_data.conv = make_conv(a, t, plan->math);
  plan->backward_filter.conv = make_conv(a, t, plan->math);
  p = std::move(plan);
  return *p;
}

// Each pass's three library calls: cuDNN's heuristic ranking (cudnnGet*Algorithm_v7), its timed ranking on
// real operands (cudnnFind*AlgorithmEx), and the workspace an algorithm needs (cudnnGet*WorkspaceSize).
// `Operands` are the memory a timed ranking runs on, named as the descriptors are: x, w, y (forward: x -> y;
// backward data: dy -> dx; backward filter: x, dy -> dw), with a workspace.
struct Operands {
  void *x, *w, *y, *workspace;
  size_t workspace_bytes;
};
struct ForwardCalls {
  using Algo = cudnnConvolutionFwdAlgo_t;
  using Perf = cudnnConvolutionFwdAlgoPerf_t;
  static constexpr int kCount = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  static constexpr const char* kWhat = "forward";
  static cudnnStatus_t rank(const Descriptors& d, cudnnConvolutionDescriptor_t c, int max, int* count, Perf* perfs) {
    return cudnnGetConvolutionForwardAlgorithm_v7(cudnn(), d.x, d.w, c, d.y, max, count, perfs);
  }
  static cudnnStatus_t time(const Descriptors& d, cudnnConvolutionDescriptor_t c, const Operands& o, int max,
                            int* count, Perf* perfs) {
    return cudnnFindConvolutionForwardAlgorithmEx(cudnn(), d.x, o.x, d.w, o.w, c, d.y, o.y, max, count, perfs,
                                                  o.workspace, o.workspace_bytes);
  }
  static cudnnStatus_t workspace(const Descriptors& d, cudnnConvolutionDescriptor_t c, Algo algo, size_t* bytes) {
    return cudnnGetConvolutionForwardWorkspaceSize(cudnn(), d.x, d.w, c, d.y, algo, bytes);
  }
};
struct BackwardDataCalls {
  using Algo = cudnnConvolutionBwdDataAlgo_t;
  using Perf = cudnnConvolutionBwdDataAlgoPerf_t;
  static constexpr int kCount = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
  static constexpr const char* kWhat = "backward-data";
  static cudnnStatus_t rank(const Descriptors& d, cudnnConvolutionDescriptor_t c, int max, int* count, Perf* perfs) {
    return cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnn(), d.w, d.y, c, d.x, max, count, perfs);
  }
  static cudnnStatus_t time(const Descriptors& d, cudnnConvolutionDescriptor_t c, const Operands& o, int max,
                            int* count, Perf* perfs) {
    return cudnnFindConvolutionBackwardDataAlgorithmEx(cudnn(), d.w, o.w, d.y, o.y, c, d.x, o.x, max, count, perfs,
                                                       o.workspace, o.workspace_bytes);
  }
  static cudnnStatus_t workspace(const Descriptors& d, cudnnConvolutionDescriptor_t c, Algo algo, size_t* bytes) {
    return cudnnGetConvolutionBackwardDataWorkspaceSize(cudnn(), d.w, d.y, c, d.x, algo, bytes);
  }
};
struct BackwardFilterCalls {
  using Algo = cudnnConvolutionBwdFilterAlgo_t;
  using Perf = cudnnConvolutionBwdFilterAlgoPerf_t;
  static constexpr int kCount = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
  static constexpr const char* kWhat = "backward-filter";
  static cudnnStatus_t rank(const Descriptors& d, cudnnConvolutionDescriptor_t c, int max, int* count, Perf* perfs) {
    return cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnn(), d.x, d.y, c, d.w, max, count, perfs);
  }
  static cudnnStatus_t time(const Descriptors& d, cudnnConvolutionDescriptor_t c, const Operands& o, int max,
                            int* count, Perf* perfs) {
    return cudnnFindConvolutionBackwardFilterAlgorithmEx(cudnn(), d.x, o.x, d.y, o.y, c, d.w, o.w, max, count, perfs,
                                                         o.workspace, o.workspace_bytes);
  }
  static cudnnStatus_t workspace(const Descriptors& d, cudnnConvolutionDescriptor_t c, Algo algo, size_t* bytes) {
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnn(), d.x, d.y, c, d.w, algo, bytes);
  }
};

// A timed search's workspace: the most any algorithm of the pass asks for, up to 1 GiB (an algorithm wanting
// more is timed as failed and never chosen), rounded up to a power of two so that the few blocks these searches
// leave in the allocator's cache serve each other and later tensors.
constexpr size_t kSearchWorkspaceCap = size_t(1) << 30;

// What the timed searches found (search_stats(), search_passes(): conv_search_stats() and conv_search_passes()).
std::mutex g_stats_mutex;
ConvSearchStats g_stats;
std::vector<ConvPassTime> g_passes;

// cuDNN's ranking of a pass's algorithms on descriptors `d`: its heuristics', or under a timed search its
// measured one, from running each algorithm once on zeroed scratch operands (never the tensors themselves: the
// search writes its outputs) of the descriptors' data type `t`.
template <class Calls>
cudnnStatus_t rank(Pass<typename Calls::Algo>& pass, const Plan& p, const Conv2dArgs& a, const Descriptors& d,
                   DType t, typename Calls::Perf* perfs, int max, int* count) {
  if (p.search == ConvAlgoSearch::heuristic) return Calls::rank(d, pass.conv, max, count, perfs);
  auto zeros = [t](int64_t n) {
    Tensor z = Tensor::empty({n}, t, Device::cuda);
    cuda::fill(z, 0.0);
    return z;
  };
  const Tensor x = zeros(a.n * a.c_in * a.h * a.w), w = zeros(a.c_out * a.c_in * a.kh * a.kw),
               y = zeros(a.n * a.c_out * a.h_out() * a.w_out());
  size_t most = 0;
  for (int i = 0; i < Calls::kCount; ++i) {
    size_t bytes = 0;
    if (Calls::workspace(d, pass.conv, typename Calls::Algo(i), &bytes) == CUDNN_STATUS_SUCCESS)
      most = std::max(most, bytes);
  }
  size_t bytes = 0;
  if (most > 0) {
    bytes = size_t(1) << 20;
    while (bytes < most && bytes < kSearchWorkspaceCap) bytes *= 2;
  }
  DeviceBuffer workspace(bytes);
  const Operands o{x.raw_data(), w.raw_data(), y.raw_data(), workspace.get(), workspace.bytes()};
  return Calls::time(d, pass.conv, o, max, count, perfs);
}

// The first usable algorithm of a ranked list: succeeded, not passed over, not a tensor-core one in strict fp32,
// never ALLOW_CONVERSION math on float32 data (cuDNN would round it to float16: overflow past 65504, gradients
// flushed below 6e-8), and deterministic when a usable one is (unless `any_determinism`); and the fastest usable
// one (meaningful for a timed ranking). Indices, -1 when none is usable.
struct Picked {
  int chosen = -1, fastest = -1;
};
template <class Perf, class Algo>
Picked pick(const Pass<Algo>& pass, const Perf* perfs, int count, bool low, bool strict, bool any_determinism) {
  auto usable = [&](const Perf& p) {
    return p.status == CUDNN_STATUS_SUCCESS &&
           std::find(pass.rejected.begin(), pass.rejected.end(), std::make_pair(p.algo, low)) == pass.rejected.end() &&
           !(!low && p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) &&
           !(strict && p.mathType == CUDNN_TENSOR_OP_MATH);
  };
  int chosen = -1, fastest = -1;
  for (int i = 0; i < count; ++i) {
    if (!usable(perfs[i])) continue;
    if (fastest < 0 || perfs[i].time < perfs[fastest].time) fastest = i;
    if (chosen < 0 && (any_determinism || perfs[i].determinism == CUDNN_DETERMINISTIC)) chosen = i;
  }
  if (chosen < 0 && fastest >= 0) {  // usable algorithms, none of them deterministic
    static std::once_flag once;
    std::call_once(once, [] {
      std::fprintf(stderr, "intl: cuDNN offers no deterministic algorithm for a convolution pass; runs with a "
                           "fixed seed may differ in the last bits on this GPU\n");
    });
    for (int i = 0; i < count && chosen < 0; ++i)
      if (usable(perfs[i])) chosen = i;
  }
  return {chosen, fastest};
}

// A timed search's choice for one pass, added to the counters.
template <class Perf>
void record_timed(const char* what, const Conv2dArgs& a, bool low, const Perf& chosen, const Perf& fastest) {
  const bool tensor_ops =
      chosen.mathType == CUDNN_TENSOR_OP_MATH || chosen.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
  std::lock_guard<std::mutex> lock(g_stats_mutex);
  g_stats.passes++;
  g_stats.chosen_ms += chosen.time;
  g_stats.fastest_ms += fastest.time;
  if (fastest.determinism != CUDNN_DETERMINISTIC) g_stats.nondeterministic_won++;
  g_passes.push_back({what, shape_of(a), int(chosen.algo), low, tensor_ops,
                      chosen.determinism == CUDNN_DETERMINISTIC, chosen.time, fastest.time});
}

// Once per plan and pass: the algorithm, from cuDNN's ranking (rank()). A bf16 plan asks with the bfloat16
// descriptors first; the float descriptors answer otherwise, true float32 (FMA) algorithms first in fp32. When
// cuDNN offers no bfloat16, or no FMA, algorithm for a shape, the pass runs on TF32 tensor cores and says so
// once on stderr. Algorithms in `pass.rejected` are passed over.
template <class Calls>
void choose_algorithm(Pass<typename Calls::Algo>& pass, const Plan& p, const Conv2dArgs& a) {
  using Perf = typename Calls::Perf;
  // Room for more entries than the enum has algorithms: the heuristics may list one algorithm once per math
  // type (cudnnGet*AlgorithmMaxCount), and a list cut short could drop the only usable one.
  constexpr int kCapacity = Calls::kCount < 32 ? 32 : Calls::kCount;
  Perf perfs[kCapacity];
  int count = 0;
  const bool timed = p.search != ConvAlgoSearch::heuristic, any = p.search == ConvAlgoSearch::fastest;
  // `fma_only`: the descriptor keeps its FMA math type (strict float32); otherwise it takes the chosen one's.
  auto take = [&](Picked picked, bool low, bool fma_only) {
    const int i = picked.chosen;
    if (i < 0) return false;
    if (timed) record_timed(Calls::kWhat, a, low, perfs[i], perfs[picked.fastest]);
    pass.algo = perfs[i].algo;
    pass.workspace = perfs[i].memory;
    if (!fma_only) CUDNN_CHECK(cudnnSetConvolutionMathType(pass.conv, perfs[i].mathType));
    pass.chosen = true;
    return true;
  };
  const DType full = p.nchw ? DType::f64 : DType::f32;
  if (p.bf16) {
    // cuDNN ranks tensor-core algorithms only for a descriptor that allows them (take() then sets the math
    // type of the one chosen).
    CUDNN_CHECK(cudnnSetConvolutionMathType(pass.conv, CUDNN_TENSOR_OP_MATH));
    if (rank<Calls>(pass, p, a, p.low, DType::bf16, perfs, kCapacity, &count) == CUDNN_STATUS_SUCCESS &&
        take(pick(pass, perfs, count, true, false, any), true, false)) {
      pass.low = true;
      return;
    }
  }
  // The plan's math type (FMA only in strict float32), whatever an earlier choice for this pass left.
  CUDNN_CHECK(cudnnSetConvolutionMathType(pass.conv, p.math));
  CUDNN_CHECK(rank<Calls>(pass, p, a, p.full, full, perfs, kCapacity, &count));
  if (take(pick(pass, perfs, count, false, p.strict, any), false, p.strict)) {
    if (p.bf16) {
      static std::once_flag once;
      std::call_once(once, [&] {
        std::fprintf(stderr, "intl: cuDNN runs no bf16 %s convolution for %s; such passes run in float32 (TF32)\n",
                     Calls::kWhat, shape_of(a).c_str());
      });
    }
    return;
  }
  // An FMA-math descriptor is offered FMA algorithms only: ask again allowing TF32.
  if (p.strict) {
    CUDNN_CHECK(cudnnSetConvolutionMathType(pass.conv, CUDNN_DEFAULT_MATH));
    CUDNN_CHECK(rank<Calls>(pass, p, a, p.full, full, perfs, kCapacity, &count));
    if (take(pick(pass, perfs, count, false, false, any), false, false)) {
      static std::once_flag once;
      std::call_once(once, [&] {
        std::fprintf(stderr, "intl: cuDNN offers no true float32 %s convolution for %s; such passes run on TF32 "
                     "tensor cores (10-bit mantissa products)\n", Calls::kWhat, shape_of(a).c_str());
      });
      return;
    }
  }
  throw Error(std::string("cuDNN has no usable ") + Calls::kWhat + " convolution algorithm for " + shape_of(a));
}

// Whether cuDNN refused an algorithm for this configuration (the next one is to be tried) rather than failed.
// cuDNN 9 answers with a code inside a category (CUDNN_STATUS_NOT_SUPPORTED_SHAPE = 3002, ..._LAYOUT = 3004,
// ...; the old CUDNN_STATUS_ARCH_MISMATCH is 3007), so the category is compared, not the code. A workspace
// query may also call the configuration a bad parameter (`bad_param_too`).
bool refusal(cudnnStatus_t status, bool bad_param_too) {
  const int category = CUDNN_STATUS_CATEGORY(int(status));
  return category == CUDNN_STATUS_NOT_SUPPORTED || (bad_param_too && category == CUDNN_STATUS_BAD_PARAM);
}

// The algorithm, then its workspace under the descriptor's final math type. An algorithm cuDNN ranked but
// whose workspace query says it cannot run this configuration is passed over for the next one, as PyTorch does.
template <class Calls>
void choose(Pass<typename Calls::Algo>& pass, const Plan& p, const Conv2dArgs& a) {
  for (;;) {
    choose_algorithm<Calls>(pass, p, a);  // throws when none is left
    size_t bytes = 0;
    const cudnnStatus_t status = Calls::workspace(p.at(pass.low), pass.conv, pass.algo, &bytes);
    if (status == CUDNN_STATUS_SUCCESS) {
      pass.workspace = std::max(pass.workspace, bytes);
      return;
    }
    if (!refusal(status, true)) CUDNN_CHECK(status);
    pass.reject();
  }
}

// The KRSC copy of a weight (bfloat16 when `bf16`, else the weight's dtype), relaid when its (address, version)
// changed; version 0 (never updated in place) is not a key, so such a weight is relaid into `scratch` on every
// call.
const void* krsc_weight(const Tensor& weight, uint64_t version, bool bf16, std::unique_ptr<DeviceBuffer>& scratch) {
  struct Cached {
    uint64_t version = 0;
    Shape shape;  // the relayout depends on it, not only on the byte count
    std::unique_ptr<DeviceBuffer> data;
  };
  static std::mutex mutex;
  static auto* cache = new std::map<std::pair<const void*, bool>, Cached>();
  const size_t bytes = size_t(weight.numel()) * (bf16 ? 2 : dtype_size(weight.dtype()));
  if (version == 0) {
    scratch = std::make_unique<DeviceBuffer>(bytes);
    weight_to_krsc(weight, scratch->get(), bf16);
    return scratch->get();
  }
  std::lock_guard<std::mutex> lock(mutex);
  Cached& c = (*cache)[{weight.raw_data(), bf16}];
  if (c.data && c.version == version && c.shape == weight.shape()) return c.data->get();
  if (!c.data || c.data->bytes() != bytes) c.data = std::make_unique<DeviceBuffer>(bytes);
  weight_to_krsc(weight, c.data->get(), bf16);
  c.version = version;
  c.shape = weight.shape();
  return c.data->get();
}

// A float32 operand's bfloat16 copy: the one `slot` holds when it copies `t` as it stands (same address and
// version), else a fresh one, left in `slot` when there is one (for the next pass) or in `scratch` (this call).
using Copy = ConvSaved::Copy;
const void* bf16_operand(const Tensor& t, Copy* slot, std::unique_ptr<DeviceBuffer>& scratch) {
  if (slot && slot->data && slot->of == t.raw_data() && slot->version == t.version()) return slot->data->get();
  auto b = std::make_unique<DeviceBuffer>(size_t(t.numel()) * 2);
  to_bf16(t.data<float>(), b->get(), t.numel());
  const void* p = b->get();
  if (slot) {
    slot->of = t.raw_data();
    slot->version = t.version();
    slot->data = std::move(b);
  } else {
    scratch = std::move(b);
  }
  return p;
}

// The args' saved copies, created on first use.
ConvSaved& saved(const Conv2dArgs& a) {
  if (!a.saved) a.saved = std::make_shared<ConvSaved>();
  return *a.saved;
}

// An activation operand as a pass reads it: bfloat16 when the pass runs on the bfloat16 descriptors, else
// float32 (or float64). A float32 tensor read in bfloat16 is rounded into a copy (bf16_operand); a bfloat16
// tensor read in float32 is widened into `scratch`; otherwise the tensor's own memory.
const void* input_for(const Tensor& t, bool low, Copy* slot, std::unique_ptr<DeviceBuffer>& scratch) {
  if (low == (t.dtype() == DType::bf16)) {
    // In place, unless a view starts off the 16-byte alignment that vectorised (tensor-core) kernels read at;
    // tensors the engine allocates start on 512-byte blocks.
    if (reinterpret_cast<uintptr_t>(t.raw_data()) % 16 == 0) return t.raw_data();
    const size_t bytes = size_t(t.numel()) * dtype_size(t.dtype());
    scratch = std::make_unique<DeviceBuffer>(bytes);
    CUDA_CHECK(cudaMemcpyAsync(scratch->get(), t.raw_data(), bytes, cudaMemcpyDeviceToDevice, stream()));
    return scratch->get();
  }
  if (low) return bf16_operand(t, slot, scratch);
  scratch = std::make_unique<DeviceBuffer>(size_t(t.numel()) * sizeof(float));
  from_bf16(t.raw_data(), static_cast<float*>(scratch->get()), t.numel());
  return scratch->get();
}

// Where a pass writes an activation result: the tensor itself when it holds the pass's type, else `scratch`
// (left empty otherwise), which finish_output() then converts into the tensor.
void* output_for(const Tensor& t, bool low, std::unique_ptr<DeviceBuffer>& scratch) {
  scratch.reset();
  if (low == (t.dtype() == DType::bf16)) return t.raw_data();
  scratch = std::make_unique<DeviceBuffer>(size_t(t.numel()) * (low ? 2 : sizeof(float)));
  return scratch->get();
}
void finish_output(const Tensor& t, bool low, const std::unique_ptr<DeviceBuffer>& scratch) {
  if (!scratch) return;
  if (low) from_bf16(scratch->get(), t.data<float>(), t.numel());
  else to_bf16(static_cast<const float*>(scratch->get()), t.raw_data(), t.numel());
}

// Runs one pass: its algorithm chosen when it is not (`choose()`), then `run()`, which prepares the operands
// for the pass as chosen (bfloat16 or not) and returns the library call's status. cuDNN may refuse to run an
// algorithm its heuristics and workspace query offered (CUDNN_STATUS_NOT_SUPPORTED): that one is passed over
// for this shape from then on and the next one runs, as PyTorch does; choose() throws when none is left.
template <class Algo, class Choose, class Run>
void execute(Pass<Algo>& pass, const char* call, Choose choose, Run run) {
  for (;;) {
    if (!pass.chosen) choose();
    const cudnnStatus_t status = run();
    if (status == CUDNN_STATUS_SUCCESS) return;
    if (!refusal(status, false))
      throw_call_error("cuDNN", call, __FILE__, __LINE__, int(status), cudnnGetErrorString(status));
    pass.reject();
  }
}

// A float64 activation (N, H, W, C) as a contiguous NCHW copy, and an NCHW result into its NHWC tensor, by
// the strided copy kernel.
Tensor to_nchw(const Tensor& t) {
  const int64_t n = t.size(0), h = t.size(1), w = t.size(2), c = t.size(3);
  Tensor out = Tensor::empty({n, c, h, w}, t.dtype(), Device::cuda);
  cuda::copy(make_view(t, {n, c, h, w}, {h * w * c, 1, w * c, c}, t.impl()->offset), out);
  return out;
}
void from_nchw(const Tensor& nchw, const Tensor& nhwc) {
  const int64_t n = nhwc.size(0), h = nhwc.size(1), w = nhwc.size(2), c = nhwc.size(3);
  cuda::copy(make_view(nchw, {n, h, w, c}, {c * h * w, w, 1, h * w}, nchw.impl()->offset), nhwc);
}

// cuDNN's scaling factors are float for float data and double for double data.
struct Scale {
  float f[2] = {1.0f, 0.0f};
  double d[2] = {1.0, 0.0};
  bool is_double;
  explicit Scale(DType t) : is_double(t == DType::f64) {}
  const void* one() const { return is_double ? static_cast<const void*>(&d[0]) : &f[0]; }
  const void* zero() const { return is_double ? static_cast<const void*>(&d[1]) : &f[1]; }
};

}  // namespace

void conv2d_forward(const Conv2dArgs& a, const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& y) {
  if (y.numel() == 0) return;
  INTL_CHECK(!bias.defined() || x.dtype() != DType::bf16, "conv2d: a bias on bfloat16 activations is not supported");
  Plan& p = plan_for(a, x.dtype());
  Pass<cudnnConvolutionFwdAlgo_t>& pass = p.forward;
  const Scale s(x.dtype());
  std::unique_ptr<DeviceBuffer> w_scratch, x_scratch, y_scratch;
  Tensor x_nchw, y_nchw;
  execute(
      pass, "cudnnConvolutionForward",
      [&] { choose<ForwardCalls>(pass, p, a); },
      [&] {
        const Descriptors& d = p.at(pass.low);
        DeviceBuffer ws(pass.workspace);
        const void* w = p.nchw ? weight.raw_data() : krsc_weight(weight, a.weight_version, pass.low, w_scratch);
        const void* xp;
        void* yp;
        if (p.nchw) {
          x_nchw = to_nchw(x);
          y_nchw = Tensor::empty({a.n, a.c_out, a.h_out(), a.w_out()}, y.dtype(), Device::cuda);
          xp = x_nchw.raw_data();
          yp = y_nchw.raw_data();
        } else {  // a float32 x's bfloat16 copy is kept for the filter gradient
          xp = input_for(x, pass.low, a.keep_input && x.dtype() == DType::f32 ? &saved(a).x : nullptr, x_scratch);
          yp = output_for(y, pass.low, y_scratch);
        }
        return cudnnConvolutionForward(cudnn(), s.one(), d.x, xp, d.w, w, pass.conv, pass.algo, ws.get(), ws.bytes(),
                                       s.zero(), d.y, yp);
      });
  finish_output(y, pass.low, y_scratch);
  void* biased = p.nchw ? y_nchw.raw_data() : y.raw_data();  // float32 y, or the NCHW float64 result
  if (bias.defined())
    CUDNN_CHECK(cudnnAddTensor(cudnn(), s.one(), p.bias, bias.raw_data(), s.one(), p.full.y, biased));
  if (p.nchw) from_nchw(y_nchw, y);
}

void conv2d_backward_data(const Conv2dArgs& a, const Tensor& dy, const Tensor& weight, const Tensor& dx) {
  if (dx.numel() == 0) return;
  Plan& p = plan_for(a, dy.dtype());
  Pass<cudnnConvolutionBwdDataAlgo_t>& pass = p.backward_data;
  const Scale s(dy.dtype());
  std::unique_ptr<DeviceBuffer> w_scratch, dy_scratch, dx_scratch;
  Tensor dy_nchw, dx_nchw;
  execute(
      pass, "cudnnConvolutionBackwardData",
      [&] { choose<BackwardDataCalls>(pass, p, a); },
      [&] {
        const Descriptors& d = p.at(pass.low);
        DeviceBuffer ws(pass.workspace);
        const void* w = p.nchw ? weight.raw_data() : krsc_weight(weight, a.weight_version, pass.low, w_scratch);
        const void* dyp;
        void* dxp;
        if (p.nchw) {
          dy_nchw = to_nchw(dy);
          dx_nchw = Tensor::empty({a.n, a.c_in, a.h, a.w}, dx.dtype(), Device::cuda);
          dyp = dy_nchw.raw_data();
          dxp = dx_nchw.raw_data();
        } else {  // a float32 dy's bfloat16 copy is kept for the backward-filter pass
          dyp = input_for(dy, pass.low, dy.dtype() == DType::f32 ? &saved(a).dy : nullptr, dy_scratch);
          dxp = output_for(dx, pass.low, dx_scratch);
        }
        return cudnnConvolutionBackwardData(cudnn(), s.one(), d.w, w, d.y, dyp, pass.conv, pass.algo, ws.get(),
                                            ws.bytes(), s.zero(), d.x, dxp);
      });
  finish_output(dx, pass.low, dx_scratch);
  if (p.nchw) from_nchw(dx_nchw, dx);
}

void conv2d_backward_filter(const Conv2dArgs& a, const Tensor& x, const Tensor& dy, const Tensor& dweight,
                            const Tensor& dbias) {
  if (dweight.numel() == 0) return;
  if (x.numel() == 0 || dy.numel() == 0) {  // an empty batch: zero gradients, as on the CPU
    cuda::fill(dweight, 0.0);
    if (dbias.defined()) cuda::fill(dbias, 0.0);
    return;
  }
  Plan& p = plan_for(a, x.dtype());
  Pass<cudnnConvolutionBwdFilterAlgo_t>& pass = p.backward_filter;
  const Scale s(x.dtype());
  std::unique_ptr<DeviceBuffer> dw, x_scratch, dy_scratch;
  Tensor x_nchw, dy_nchw;
  execute(
      pass, "cudnnConvolutionBackwardFilter",
      [&] { choose<BackwardFilterCalls>(pass, p, a); },
      [&] {
        const Descriptors& d = p.at(pass.low);
        DeviceBuffer ws(pass.workspace);
        // KRSC, or straight into the OIHW gradient in NCHW (float64)
        if (!p.nchw)
          dw = std::make_unique<DeviceBuffer>(size_t(dweight.numel()) *
                                              (pass.low ? 2 : dtype_size(dweight.dtype())));
        void* dwp = p.nchw ? dweight.raw_data() : dw->get();
        const void* xp;
        const void* dyp;
        if (p.nchw) {
          x_nchw = to_nchw(x);
          dy_nchw = to_nchw(dy);
          xp = x_nchw.raw_data();
          dyp = dy_nchw.raw_data();
        } else {  // float32 operands: the bfloat16 copies the forward and backward-data passes left, if any
          ConvSaved* kept = a.saved.get();
          xp = input_for(x, pass.low, kept ? &kept->x : nullptr, x_scratch);
          dyp = input_for(dy, pass.low, kept ? &kept->dy : nullptr, dy_scratch);
        }
        return cudnnConvolutionBackwardFilter(cudnn(), s.one(), d.x, xp, d.y, dyp, pass.conv, pass.algo, ws.get(),
                                              ws.bytes(), s.zero(), d.w, dwp);
      });
  if (!p.nchw) weight_from_krsc(dw->get(), pass.low, dweight);
  if (dbias.defined())  // from the float32 dy, or the NCHW float64 copy
    CUDNN_CHECK(cudnnConvolutionBackwardBias(cudnn(), s.one(), p.full.y, p.nchw ? dy_nchw.raw_data() : dy.raw_data(),
                                             s.zero(), p.bias, dbias.raw_data()));
}

}  // namespace intl::cuda

namespace intl::cuda {
ConvSearchStats search_stats() {
  std::lock_guard<std::mutex> lock(g_stats_mutex);
  return g_stats;
}
std::vector<ConvPassTime> search_passes() {
  std::lock_guard<std::mutex> lock(g_stats_mutex);
  return g_passes;
}
}  // namespace intl::cuda
