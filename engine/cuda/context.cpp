// Lazy creation of the device context, stream and library handles. Handles are never destroyed: tensors
// may be freed during static destruction, and the driver reclaims everything at process exit.
#include "engine/cuda/context.h"

#include <mutex>

#include "engine/backend.h"
#include "engine/cuda/check.h"

namespace intl::cuda {
namespace {

constexpr int kDevice = 0;

struct Probe {
  bool ok = false;
  std::string failure;
  std::string name;
};

const Probe& probe_result() {
  static const Probe* p = new Probe([] {  // never destroyed: tensors freed at exit still ask
    Probe r;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e == cudaSuccess && count == 0) {
      r.failure = "no CUDA device found";
      return r;
    }
    if (e == cudaSuccess) e = cudaSetDevice(kDevice);
    if (e == cudaSuccess) e = cudaFree(nullptr);  // creates the primary context now, not mid-step
    cudaDeviceProp prop{};
    if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, kDevice);
    if (e != cudaSuccess) {
      r.failure = cudaGetErrorString(e);
      cudaGetLastError();  // start-up errors are not sticky; clear the last-error slot anyway
      return r;
    }
    r.ok = true;
    r.name = prop.name;
    return r;
  }());
  return *p;
}

struct Handles {
  std::mutex mutex;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
  cusolverDnHandle_t cusolver = nullptr;
};

Handles& handles() {
  static Handles* h = new Handles();  // never destroyed (see above)
  return *h;
}

void require_gpu() {
  if (!probe()) throw Error("CUDA backend used without a usable GPU: " + probe_failure());
}

}  // namespace

bool probe() {
  try {
    return probe_result().ok;
  } catch (...) {
    return false;
  }
}

const std::string& probe_failure() { return probe_result().failure; }

cudaStream_t stream() {
  Handles& h = handles();
  std::lock_guard<std::mutex> lock(h.mutex);
  if (!h.stream) {
    require_gpu();
    CUDA_CHECK(cudaSetDevice(kDevice));
    CUDA_CHECK(cudaStreamCreateWithFlags(&h.stream, cudaStreamNonBlocking));
  }
  return h.stream;
}

cublasHandle_t cublas() {
  cudaStream_t s = stream();
  Handles& h = handles();
  std::lock_guard<std::mutex> lock(h.mutex);
  if (!h.cublas) {
    CUBLAS_CHECK(cublasCreate(&h.cublas));
    CUBLAS_CHECK(cublasSetStream(h.cublas, s));
  }
  return h.cublas;
}

cudnnHandle_t cudnn() {
  cudaStream_t s = stream();
  Handles& h = handles();
  std::lock_guard<std::mutex> lock(h.mutex);
  if (!h.cudnn) {
    CUDNN_CHECK(cudnnCreate(&h.cudnn));
    CUDNN_CHECK(cudnnSetStream(h.cudnn, s));
  }
  return h.cudnn;
}

cusolverDnHandle_t cusolver() {
  cudaStream_t s = stream();
  Handles& h = handles();
  std::lock_guard<std::mutex> lock(h.mutex);
  if (!h.cusolver) {
    CUSOLVER_CHECK(cusolverDnCreate(&h.cusolver));
    CUSOLVER_CHECK(cusolverDnSetStream(h.cusolver, s));
  }
  return h.cusolver;
}

void synchronize() { CUDA_CHECK(cudaStreamSynchronize(stream())); }

}  // namespace intl::cuda

namespace intl::cuda {

bool available() { return probe(); }
std::string device_name() { return probe() ? probe_result().name : std::string(); }
std::string unavailable_reason() { return probe() ? std::string() : probe_failure(); }

}  // namespace intl::cuda
