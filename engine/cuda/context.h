// The process's CUDA context: the device, one stream on which every kernel, copy and library call of the
// backend runs (so stream order alone makes freed memory safe to reuse), and the cuBLAS, cuDNN and cuSOLVER
// handles bound to that stream, each created once on first use. The engine has one CUDA device (ordinal 0).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <cusolverDn.h>

#include <string>

namespace intl::cuda {

// Whether a GPU answers; the first call probes and remembers. Never throws: any start-up failure (no
// driver, driver too old, no device, out of memory creating the context) counts as "no GPU".
bool probe();
// Why probe() failed ("" when it succeeded).
const std::string& probe_failure();

cudaStream_t stream();          // throws when no GPU (callers go through cuda_backend(), which checks)
cublasHandle_t cublas();
cudnnHandle_t cudnn();
cusolverDnHandle_t cusolver();

// Waits for all work queued on the stream (host reads of device memory, error surfacing).
void synchronize();

}  // namespace intl::cuda
