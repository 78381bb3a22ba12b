// The emulated cuDNN (include/cudnn.h): direct convolutions in double precision over operands read through
// their descriptors, so a descriptor that disagrees with the memory it describes gives wrong numbers here as
// on a GPU. The algorithm lists follow what conv.cpp must cope with: an FMA-math descriptor is offered FMA
// algorithms only, bfloat16 runs on tensor-op algorithms with float compute, and float64 has no NHWC
// algorithm (the engine runs float64 in NCHW).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cuda_bf16.h"
#include "cudnn.h"

struct cudnnContext {};
struct cudnnTensorStruct {
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
  int dim[4] = {0, 0, 0, 0};  // n, c, h, w (a filter: k, c, r, s)
  bool set = false;
};
struct cudnnFilterStruct : cudnnTensorStruct {};
struct cudnnConvolutionStruct {
  int pad_h = 0, pad_w = 0, u = 1, v = 1;
  cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  bool set = false;
};

namespace {

cudnnStatus_t fail(const char* what) {
  std::fprintf(stderr, "cudnn emulation: %s\n", what);
  return CUDNN_STATUS_BAD_PARAM;
}

// Element offsets of logical (i0, i1, i2, i3) = (n, c, h, w) / (k, c, r, s) in the descriptor's format.
struct View {
  const cudnnTensorStruct* d;
  void* p;
  int64_t offset(int64_t a, int64_t b, int64_t h, int64_t w) const {
    const int64_t C = d->dim[1], H = d->dim[2], W = d->dim[3];
    return d->format == CUDNN_TENSOR_NCHW ? ((a * C + b) * H + h) * W + w : ((a * H + h) * W + w) * C + b;
  }
  double get(int64_t a, int64_t b, int64_t h, int64_t w) const {
    const int64_t i = offset(a, b, h, w);
    switch (d->type) {
      case CUDNN_DATA_FLOAT: return static_cast<const float*>(p)[i];
      case CUDNN_DATA_DOUBLE: return static_cast<const double*>(p)[i];
      case CUDNN_DATA_BFLOAT16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    }
    return 0;
  }
  void set(int64_t a, int64_t b, int64_t h, int64_t w, double v) const {
    const int64_t i = offset(a, b, h, w);
    switch (d->type) {
      case CUDNN_DATA_FLOAT: static_cast<float*>(p)[i] = float(v); break;
      case CUDNN_DATA_DOUBLE: static_cast<double*>(p)[i] = v; break;
      case CUDNN_DATA_BFLOAT16: static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(float(v)); break;
    }
  }
  int64_t numel() const { return int64_t(d->dim[0]) * d->dim[1] * d->dim[2] * d->dim[3]; }
};

double scalar(const void* s, cudnnDataType_t type) {
  return type == CUDNN_DATA_DOUBLE ? *static_cast<const double*>(s) : double(*static_cast<const float*>(s));
}

// What every convolution call checks: descriptors set and of one data type, the compute type that data type
// needs, consistent extents, and device pointers. Returns "" or the problem.
const char* check_conv(const cudnnTensorStruct* x, const cudnnTensorStruct* w, const cudnnConvolutionStruct* c,
                       const cudnnTensorStruct* y) {
  if (!x->set || !w->set || !y->set || !c->set) return "a descriptor was never set";
  if (x->type != w->type || x->type != y->type) return "operand descriptors differ in data type";
  const cudnnDataType_t need = x->type == CUDNN_DATA_DOUBLE ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  if (c->compute != need) return "the convolution's compute type does not fit the data type";
  if (x->dim[1] != w->dim[1] || y->dim[1] != w->dim[0] || x->dim[0] != y->dim[0]) return "channels or batch differ";
  if (y->dim[2] != (x->dim[2] + 2 * c->pad_h - w->dim[2]) / c->u + 1 ||
      y->dim[3] != (x->dim[3] + 2 * c->pad_w - w->dim[3]) / c->v + 1)
    return "the output extent does not follow from input, filter, padding and stride";
  return "";
}

size_t workspace_of(int algo) { return algo == 1 ? 512 : algo == 2 ? 4096 : 0; }

// INTL_EMULATION_CUDNN_REJECT=workspace: the workspace query of algorithm 1 (ranked first for float32 and
// bfloat16 when allowed) answers NOT_SUPPORTED_SHAPE; =bad-param: that query answers BAD_PARAM instead (cuDNN's
// other way of calling a configuration one an algorithm cannot run); =run: algorithm 1 passes its workspace query
// but answers NOT_SUPPORTED_LAYOUT when run. cuDNN has done all three for an algorithm its heuristics recommended;
// the caller must fall back to the next one. cuDNN 9 names the reason with a code inside a category, as here.
bool rejects(const char* when) {
  const char* v = std::getenv("INTL_EMULATION_CUDNN_REJECT");
  return v && std::strcmp(v, when) == 0;
}
// SUCCESS, or how algorithm `algo`'s workspace query refuses it.
cudnnStatus_t workspace_refusal(int algo) {
  static const bool reject = rejects("workspace"), bad_param = rejects("bad-param");
  if (reject && algo == 1) return CUDNN_STATUS_NOT_SUPPORTED_SHAPE;
  if (bad_param && algo == 1) return CUDNN_STATUS_BAD_PARAM;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t workspace_status(int algo, size_t* bytes) {
  if (const cudnnStatus_t refusal = workspace_refusal(algo); refusal != CUDNN_STATUS_SUCCESS) return refusal;
  *bytes = workspace_of(algo);
  return CUDNN_STATUS_SUCCESS;
}

template <class Perf>
cudnnStatus_t algorithms(const cudnnTensorStruct* x, const cudnnTensorStruct* w, const cudnnConvolutionStruct* c,
                         const cudnnTensorStruct* y, int requested, int* returned, Perf* perfs) {
  const char* bad = check_conv(x, w, c, y);
  if (*bad) return fail(bad);
  std::vector<Perf> list;
  auto add = [&](int algo, cudnnMathType_t math, cudnnStatus_t status) {
    Perf p{};
    p.algo = decltype(p.algo)(algo);
    p.status = status;
    p.memory = workspace_of(algo);
    p.determinism = CUDNN_DETERMINISTIC;
    p.mathType = math;
    list.push_back(p);
  };
  const bool nhwc = x->format == CUDNN_TENSOR_NHWC || w->format == CUDNN_TENSOR_NHWC;
  if (x->type == CUDNN_DATA_DOUBLE) {
    add(0, CUDNN_DEFAULT_MATH, nhwc ? CUDNN_STATUS_NOT_SUPPORTED : CUDNN_STATUS_SUCCESS);
  } else if (x->type == CUDNN_DATA_BFLOAT16) {
    add(1, CUDNN_TENSOR_OP_MATH, c->math == CUDNN_FMA_MATH ? CUDNN_STATUS_NOT_SUPPORTED : CUDNN_STATUS_SUCCESS);
  } else if (c->math == CUDNN_FMA_MATH) {
    add(0, CUDNN_FMA_MATH, CUDNN_STATUS_SUCCESS);
  } else {
    // The heuristics may list an algorithm once per math type; ALLOW_CONVERSION would round float32 data to
    // float16 (the run below refuses it).
    add(1, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, CUDNN_STATUS_SUCCESS);
    add(1, CUDNN_TENSOR_OP_MATH, CUDNN_STATUS_SUCCESS);  // TF32
    add(0, CUDNN_DEFAULT_MATH, CUDNN_STATUS_SUCCESS);
  }
  *returned = std::min(requested, int(list.size()));
  for (int i = 0; i < *returned; ++i) perfs[i] = list[size_t(i)];
  return CUDNN_STATUS_SUCCESS;
}

// Algorithm 1 refused when run (INTL_EMULATION_CUDNN_REJECT=run), before it reads or writes anything.
bool refused_at_run(int algo) {
  static const bool reject = rejects("run");
  return reject && algo == 1;
}

const char* check_run(int algo, const cudnnConvolutionStruct* c, const cudnnTensorStruct* x, void* workspace,
                      size_t bytes, std::initializer_list<const void*> operands) {
  if (algo < 0 || algo > 2) return "an algorithm never offered";
  if (c->math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION && x->type == CUDNN_DATA_FLOAT)
    return "float32 data under CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION (rounded to float16)";
  if (bytes < workspace_of(algo)) return "a workspace smaller than the algorithm needs";
  if (workspace_of(algo) > 0 && !emu::is_device_pointer(workspace)) return "a host workspace";
  for (const void* p : operands)
    if (!p || !emu::is_device_pointer(p)) return "a null or host operand pointer";
  return "";
}

// The timed ranking (cudnnFind*AlgorithmEx): the heuristics' list, timed (algorithm 0 2 ms, 1 1 ms), plus
// algorithm 2 (0.5 ms, non-deterministic) wherever tensor-op math is allowed; an algorithm whose workspace
// exceeds the one given, or that the rejection mode refuses, fails. The output `out` is overwritten with NaN,
// as a real search leaves whatever its last algorithm wrote. Sorted by time, failures last.
template <class Perf>
cudnnStatus_t timed_algorithms(const cudnnTensorStruct* x, const cudnnTensorStruct* w, const cudnnConvolutionStruct* c,
                               const cudnnTensorStruct* y, std::initializer_list<const void*> operands, View out,
                               void* ws, size_t ws_bytes, int requested, int* returned, Perf* perfs) {
  int count = 0;
  Perf list[4];
  const cudnnStatus_t status = algorithms(x, w, c, y, 3, &count, list);
  if (status != CUDNN_STATUS_SUCCESS) return status;
  for (const void* p : operands)
    if (!p || !emu::is_device_pointer(p)) return fail("a null or host operand pointer in a timed search");
  if (ws_bytes > 0 && (!ws || !emu::is_device_pointer(ws))) return fail("a host workspace in a timed search");
  int tensor_op = -1;
  for (int i = count - 1; i >= 0; --i)
    if (list[i].mathType == CUDNN_TENSOR_OP_MATH && list[i].status == 0) tensor_op = i;
  if (tensor_op >= 0) {
    Perf p = list[tensor_op];
    p.algo = decltype(p.algo)(2);
    p.memory = workspace_of(2);
    p.determinism = CUDNN_NON_DETERMINISTIC;
    list[count++] = p;
  }
  for (int i = 0; i < count; ++i) {
    Perf& p = list[i];
    const int algo = int(p.algo);
    p.time = algo == 0 ? 2.0f : algo == 1 ? 1.0f : 0.5f;
    if (p.status == CUDNN_STATUS_SUCCESS && (workspace_of(algo) > ws_bytes || refused_at_run(algo) ||
                                             workspace_refusal(algo) != CUDNN_STATUS_SUCCESS))
      p.status = CUDNN_STATUS_NOT_SUPPORTED;
    if (p.status != CUDNN_STATUS_SUCCESS) p.time = -1;
  }
  std::stable_sort(list, list + count, [](const Perf& a, const Perf& b) {
    return (a.status == 0) != (b.status == 0) ? a.status == 0 : a.time < b.time;
  });
  for (int64_t i = 0; i < out.numel(); ++i) {
    const int64_t C = out.d->dim[1], H = out.d->dim[2], W = out.d->dim[3];
    out.set(i / (C * H * W), i / (H * W) % C, i / W % H, i % W, std::nan(""));
  }
  *returned = std::min(requested, count);
  for (int i = 0; i < *returned; ++i) perfs[i] = list[i];
  return CUDNN_STATUS_SUCCESS;
}

}  // namespace

const char* cudnnGetErrorString(cudnnStatus_t s) {
  switch (s) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_NOT_SUPPORTED_SHAPE: return "CUDNN_STATUS_NOT_SUPPORTED_SHAPE";
    case CUDNN_STATUS_NOT_SUPPORTED_LAYOUT: return "CUDNN_STATUS_NOT_SUPPORTED_LAYOUT";
  }
  return "CUDNN_STATUS_UNKNOWN";
}

cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) {
  *handle = new cudnnContext();
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t, cudaStream_t) { return CUDNN_STATUS_SUCCESS; }

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* d) {
  *d = new cudnnTensorStruct();
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format, cudnnDataType_t type,
                                         int n, int c, int h, int w) {
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0) return fail("a tensor extent <= 0");
  *d = {type, format, {n, c, h, w}, true};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* d) {
  *d = new cudnnFilterStruct();
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w) {
  if (k <= 0 || c <= 0 || h <= 0 || w <= 0) return fail("a filter extent <= 0");
  d->type = type;
  d->format = format;
  d->dim[0] = k, d->dim[1] = c, d->dim[2] = h, d->dim[3] = w;
  d->set = true;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* d) {
  *d = new cudnnConvolutionStruct();
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w, int u, int v,
                                              int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute) {
  if (dilation_h != 1 || dilation_w != 1 || mode != CUDNN_CROSS_CORRELATION || u < 1 || v < 1 || pad_h < 0)
    return fail("a convolution this emulation does not model (dilation, flipped kernel, bad stride or padding)");
  d->pad_h = pad_h, d->pad_w = pad_w, d->u = u, d->v = v;
  d->compute = compute;
  d->set = true;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t math) {
  d->math = math;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                                                     cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t y,
                                                     int requested, int* returned, cudnnConvolutionFwdAlgoPerf_t* p) {
  return algorithms(x, w, c, y, requested, returned, p);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t, cudnnFilterDescriptor_t w,
                                                          cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t c,
                                                          cudnnTensorDescriptor_t dx, int requested, int* returned,
                                                          cudnnConvolutionBwdDataAlgoPerf_t* p) {
  return algorithms(dx, w, c, dy, requested, returned, p);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t, cudnnTensorDescriptor_t x,
                                                            cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t c,
                                                            cudnnFilterDescriptor_t dw, int requested, int* returned,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t* p) {
  return algorithms(x, dw, c, dy, requested, returned, p);
}
cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t, cudnnTensorDescriptor_t, cudnnFilterDescriptor_t,
                                                      cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t,
                                                      cudnnConvolutionFwdAlgo_t algo, size_t* bytes) {
  return workspace_status(algo, bytes);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t, cudnnFilterDescriptor_t, cudnnTensorDescriptor_t,
                                                           cudnnConvolutionDescriptor_t, cudnnTensorDescriptor_t,
                                                           cudnnConvolutionBwdDataAlgo_t algo, size_t* bytes) {
  return workspace_status(algo, bytes);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t, cudnnTensorDescriptor_t,
                                                             cudnnTensorDescriptor_t, cudnnConvolutionDescriptor_t,
                                                             cudnnFilterDescriptor_t,
                                                             cudnnConvolutionBwdFilterAlgo_t algo, size_t* bytes) {
  return workspace_status(algo, bytes);
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(cudnnHandle_t, cudnnTensorDescriptor_t xd, const void* x,
                                                     cudnnFilterDescriptor_t wd, const void* w,
                                                     cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t yd,
                                                     void* y, int requested, int* returned,
                                                     cudnnConvolutionFwdAlgoPerf_t* perfs, void* ws, size_t ws_bytes) {
  return timed_algorithms(xd, wd, c, yd, {x, w, y}, View{yd, y}, ws, ws_bytes, requested, returned, perfs);
}
cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(cudnnHandle_t, cudnnFilterDescriptor_t wd, const void* w,
                                                          cudnnTensorDescriptor_t dyd, const void* dy,
                                                          cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t dxd,
                                                          void* dx, int requested, int* returned,
                                                          cudnnConvolutionBwdDataAlgoPerf_t* perfs, void* ws,
                                                          size_t ws_bytes) {
  return timed_algorithms(dxd, wd, c, dyd, {w, dy, dx}, View{dxd, dx}, ws, ws_bytes, requested, returned, perfs);
}
cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(cudnnHandle_t, cudnnTensorDescriptor_t xd, const void* x,
                                                            cudnnTensorDescriptor_t dyd, const void* dy,
                                                            cudnnConvolutionDescriptor_t c,
                                                            cudnnFilterDescriptor_t dwd, void* dw, int requested,
                                                            int* returned, cudnnConvolutionBwdFilterAlgoPerf_t* perfs,
                                                            void* ws, size_t ws_bytes) {
  return timed_algorithms(xd, dwd, c, dyd, {x, dy, dw}, View{dwd, dw}, ws, ws_bytes, requested, returned, perfs);
}

// y = alpha conv(x, w) + beta y
cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t, const void* alpha, cudnnTensorDescriptor_t xd, const void* x,
                                      cudnnFilterDescriptor_t wd, const void* w, cudnnConvolutionDescriptor_t c,
                                      cudnnConvolutionFwdAlgo_t algo, void* ws, size_t ws_bytes, const void* beta,
                                      cudnnTensorDescriptor_t yd, void* y) {
  const char* bad = check_conv(xd, wd, c, yd);
  if (!*bad) bad = check_run(algo, c, xd, ws, ws_bytes, {x, w, y});
  if (*bad) return fail(bad);
  if (refused_at_run(algo)) return CUDNN_STATUS_NOT_SUPPORTED_LAYOUT;
  const View X{xd, const_cast<void*>(x)}, W{wd, const_cast<void*>(w)}, Y{yd, y};
  const double a = scalar(alpha, xd->type), b = scalar(beta, xd->type);
  for (int n = 0; n < yd->dim[0]; ++n)
    for (int k = 0; k < yd->dim[1]; ++k)
      for (int oh = 0; oh < yd->dim[2]; ++oh)
        for (int ow = 0; ow < yd->dim[3]; ++ow) {
          double acc = 0;
          for (int ci = 0; ci < xd->dim[1]; ++ci)
            for (int r = 0; r < wd->dim[2]; ++r)
              for (int s = 0; s < wd->dim[3]; ++s) {
                const int ih = oh * c->u - c->pad_h + r, iw = ow * c->v - c->pad_w + s;
                if (ih < 0 || iw < 0 || ih >= xd->dim[2] || iw >= xd->dim[3]) continue;
                acc += X.get(n, ci, ih, iw) * W.get(k, ci, r, s);
              }
          Y.set(n, k, oh, ow, a * acc + (b != 0 ? b * Y.get(n, k, oh, ow) : 0.0));
        }
  return CUDNN_STATUS_SUCCESS;
}

// dx = alpha conv^T(dy, w) + beta dx
cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t, const void* alpha, cudnnFilterDescriptor_t wd, const void* w,
                                           cudnnTensorDescriptor_t dyd, const void* dy, cudnnConvolutionDescriptor_t c,
                                           cudnnConvolutionBwdDataAlgo_t algo, void* ws, size_t ws_bytes,
                                           const void* beta, cudnnTensorDescriptor_t dxd, void* dx) {
  const char* bad = check_conv(dxd, wd, c, dyd);
  if (!*bad) bad = check_run(algo, c, dxd, ws, ws_bytes, {w, dy, dx});
  if (*bad) return fail(bad);
  if (refused_at_run(algo)) return CUDNN_STATUS_NOT_SUPPORTED_LAYOUT;
  const View W{wd, const_cast<void*>(w)}, DY{dyd, const_cast<void*>(dy)}, DX{dxd, dx};
  const double a = scalar(alpha, dxd->type), b = scalar(beta, dxd->type);
  std::vector<double> acc(size_t(DX.numel()), 0.0);
  auto at = [&](int n, int ci, int h, int w_) {
    return ((size_t(n) * dxd->dim[1] + ci) * dxd->dim[2] + h) * dxd->dim[3] + w_;
  };
  for (int n = 0; n < dyd->dim[0]; ++n)
    for (int k = 0; k < dyd->dim[1]; ++k)
      for (int oh = 0; oh < dyd->dim[2]; ++oh)
        for (int ow = 0; ow < dyd->dim[3]; ++ow) {
          const double g = DY.get(n, k, oh, ow);
          for (int ci = 0; ci < dxd->dim[1]; ++ci)
            for (int r = 0; r < wd->dim[2]; ++r)
              for (int s = 0; s < wd->dim[3]; ++s) {
                const int ih = oh * c->u - c->pad_h + r, iw = ow * c->v - c->pad_w + s;
                if (ih < 0 || iw < 0 || ih >= dxd->dim[2] || iw >= dxd->dim[3]) continue;
                acc[at(n, ci, ih, iw)] += g * W.get(k, ci, r, s);
              }
        }
  for (int n = 0; n < dxd->dim[0]; ++n)
    for (int ci = 0; ci < dxd->dim[1]; ++ci)
      for (int h = 0; h < dxd->dim[2]; ++h)
        for (int w_ = 0; w_ < dxd->dim[3]; ++w_)
          DX.set(n, ci, h, w_, a * acc[at(n, ci, h, w_)] + (b != 0 ? b * DX.get(n, ci, h, w_) : 0.0));
  return CUDNN_STATUS_SUCCESS;
}

// dw = alpha sum_n x * dy + beta dw
cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t, const void* alpha, cudnnTensorDescriptor_t xd, const void* x,
                                             cudnnTensorDescriptor_t dyd, const void* dy,
                                             cudnnConvolutionDescriptor_t c, cudnnConvolutionBwdFilterAlgo_t algo,
                                             void* ws, size_t ws_bytes, const void* beta, cudnnFilterDescriptor_t dwd,
                                             void* dw) {
  const char* bad = check_conv(xd, dwd, c, dyd);
  if (!*bad) bad = check_run(algo, c, xd, ws, ws_bytes, {x, dy, dw});
  if (*bad) return fail(bad);
  if (refused_at_run(algo)) return CUDNN_STATUS_NOT_SUPPORTED_LAYOUT;
  const View X{xd, const_cast<void*>(x)}, DY{dyd, const_cast<void*>(dy)}, DW{dwd, dw};
  const double a = scalar(alpha, xd->type), b = scalar(beta, xd->type);
  for (int k = 0; k < dwd->dim[0]; ++k)
    for (int ci = 0; ci < dwd->dim[1]; ++ci)
      for (int r = 0; r < dwd->dim[2]; ++r)
        for (int s = 0; s < dwd->dim[3]; ++s) {
          double acc = 0;
          for (int n = 0; n < dyd->dim[0]; ++n)
            for (int oh = 0; oh < dyd->dim[2]; ++oh)
              for (int ow = 0; ow < dyd->dim[3]; ++ow) {
                const int ih = oh * c->u - c->pad_h + r, iw = ow * c->v - c->pad_w + s;
                if (ih < 0 || iw < 0 || ih >= xd->dim[2] || iw >= xd->dim[3]) continue;
                acc += X.get(n, ci, ih, iw) * DY.get(n, k, oh, ow);
              }
          DW.set(k, ci, r, s, a * acc + (b != 0 ? b * DW.get(k, ci, r, s) : 0.0));
        }
  return CUDNN_STATUS_SUCCESS;
}

// c = alpha a + beta c, a (1, C, 1, 1) broadcast over c's n, h, w
cudnnStatus_t cudnnAddTensor(cudnnHandle_t, const void* alpha, cudnnTensorDescriptor_t ad, const void* a,
                             const void* beta, cudnnTensorDescriptor_t cd, void* c) {
  if (!ad->set || !cd->set || ad->type != cd->type) return fail("cudnnAddTensor: descriptors unset or of two types");
  if (ad->dim[0] != 1 || ad->dim[2] != 1 || ad->dim[3] != 1 || ad->dim[1] != cd->dim[1])
    return fail("cudnnAddTensor: a bias that is not (1, C, 1, 1)");
  if (!emu::is_device_pointer(a) || !emu::is_device_pointer(c) || !a || !c) return fail("cudnnAddTensor: pointers");
  const View A{ad, const_cast<void*>(a)}, Cv{cd, c};
  const double al = scalar(alpha, cd->type), be = scalar(beta, cd->type);
  for (int n = 0; n < cd->dim[0]; ++n)
    for (int k = 0; k < cd->dim[1]; ++k)
      for (int h = 0; h < cd->dim[2]; ++h)
        for (int w = 0; w < cd->dim[3]; ++w) Cv.set(n, k, h, w, al * A.get(0, k, 0, 0) + be * Cv.get(n, k, h, w));
  return CUDNN_STATUS_SUCCESS;
}

// db = alpha sum over n, h, w of dy + beta db
cudnnStatus_t cudnnConvolutionBackwardBias(cudnnHandle_t, const void* alpha, cudnnTensorDescriptor_t dyd,
                                           const void* dy, const void* beta, cudnnTensorDescriptor_t dbd, void* db) {
  if (!dyd->set || !dbd->set || dyd->type != dbd->type) return fail("cudnnConvolutionBackwardBias: descriptors");
  if (dbd->dim[1] != dyd->dim[1] || dbd->dim[0] != 1 || dbd->dim[2] != 1 || dbd->dim[3] != 1)
    return fail("cudnnConvolutionBackwardBias: a bias that is not (1, C, 1, 1)");
  if (!emu::is_device_pointer(dy) || !emu::is_device_pointer(db) || !dy || !db)
    return fail("cudnnConvolutionBackwardBias: pointers");
  const View DY{dyd, const_cast<void*>(dy)}, DB{dbd, db};
  const double a = scalar(alpha, dyd->type), b = scalar(beta, dyd->type);
  for (int k = 0; k < dyd->dim[1]; ++k) {
    double acc = 0;
    for (int n = 0; n < dyd->dim[0]; ++n)
      for (int h = 0; h < dyd->dim[2]; ++h)
        for (int w = 0; w < dyd->dim[3]; ++w) acc += DY.get(n, k, h, w);
    DB.set(0, k, 0, 0, a * acc + (b != 0 ? b * DB.get(0, k, 0, 0) : 0.0));
  }
  return CUDNN_STATUS_SUCCESS;
}
