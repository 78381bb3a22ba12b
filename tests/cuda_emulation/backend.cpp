// The CUDA backend table of the emulation build: the real table's entries, that is the engine's own kernels
// (engine/cuda/*.cu, run by the emulated runtime), its caching device allocator, and its cuBLAS, cuSOLVER and
// cuDNN calls (blas.cpp, solver.cpp, conv.cpp) over the emulated libraries (cublas.cpp, cudnn.cpp); only the
// context (device probe, stream, handles) is this file's (tests/cuda_emulation/README.md).
#include <cstdlib>
#include <string>
#include "engine/backend.h"
#include "engine/cuda/allocator.h"
#include "engine/cuda/check.h"
#include "engine/cuda/context.h"
#include "engine/cuda/kernels.h"

namespace intl {
namespace cuda {

bool probe() { return true; }
const std::string& probe_failure() {
  static const std::string none;
  return none;
}
cudaStream_t stream() { return reinterpret_cast<cudaStream_t>(uintptr_t(1)); }
cublasHandle_t cublas() {
  static cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    CUBLAS_CHECK(cublasCreate(&h));
    return h;
  }();
  return handle;
}
cusolverDnHandle_t cusolver() {
  static cusolverDnHandle_t handle = [] {
    cusolverDnHandle_t h = nullptr;
    CUSOLVER_CHECK(cusolverDnCreate(&h));
    return h;
  }();
  return handle;
}
cudnnHandle_t cudnn() {
  static cudnnHandle_t handle = [] {
    cudnnHandle_t h = nullptr;
    CUDNN_CHECK(cudnnCreate(&h));
    return h;
  }();
  return handle;
}
void synchronize() { CUDA_CHECK(cudaStreamSynchronize(stream())); }

}  // namespace cuda

const Backend& cuda_backend() {
  static const Backend table = {
      "cuda",
      cuda_alloc,
      cuda_free,
      cuda::copy,
      cuda::fill,
      cuda::random,
      cuda::unary,
      cuda::binary,
      cuda::reduce_sum,
      cuda::gemm,
      cuda::eigh,
      cuda::cholesky,
      cuda::trsm_lower,
      cuda::batchnorm_forward_train,
      cuda::batchnorm_backward_train,
      cuda::conv2d_forward,
      cuda::conv2d_backward_data,
      cuda::conv2d_backward_filter,
      cuda::maxpool2d_forward,
      cuda::maxpool2d_backward,
      cuda::batchnorm2d_forward,
      cuda::batchnorm2d_backward,
      cuda::softmax_xent,
      cuda::sgd_step,
      cuda::adam_step,
      cuda::synchronize,
  };
  // INTL_EMULATION_CPU_SLOTS="binary,batchnorm2d_forward": those slots run the CPU's code instead, to find
  // which kernel a parity failure comes from.
  static const Backend chosen = [] {
    Backend t = table;
    const char* env = std::getenv("INTL_EMULATION_CPU_SLOTS");
    const std::string slots = env ? std::string(",") + env + "," : "";
    const Backend& c = cpu_backend();
#define INTL_CPU_SLOT(slot) \
  if (slots.find("," #slot ",") != std::string::npos) t.slot = c.slot;
    INTL_CPU_SLOT(copy) INTL_CPU_SLOT(fill) INTL_CPU_SLOT(random) INTL_CPU_SLOT(unary) INTL_CPU_SLOT(binary)
    INTL_CPU_SLOT(reduce_sum) INTL_CPU_SLOT(batchnorm_forward_train) INTL_CPU_SLOT(batchnorm_backward_train)
    INTL_CPU_SLOT(maxpool2d_forward) INTL_CPU_SLOT(maxpool2d_backward) INTL_CPU_SLOT(batchnorm2d_forward)
    INTL_CPU_SLOT(batchnorm2d_backward) INTL_CPU_SLOT(softmax_xent) INTL_CPU_SLOT(sgd_step) INTL_CPU_SLOT(adam_step)
    INTL_CPU_SLOT(conv2d_forward) INTL_CPU_SLOT(conv2d_backward_data) INTL_CPU_SLOT(conv2d_backward_filter)
    INTL_CPU_SLOT(gemm) INTL_CPU_SLOT(eigh) INTL_CPU_SLOT(cholesky) INTL_CPU_SLOT(trsm_lower)
#undef INTL_CPU_SLOT
    return t;
  }();
  return chosen;
}

bool cuda_built() { return true; }
bool cuda_available() { return true; }
std::string cuda_device_name() { return "CUDA emulation on the CPU"; }
std::string cuda_unavailable_reason() { return ""; }

}  // namespace intl
