// Checked calls into CUDA, cuBLAS, cuDNN and cuSOLVER: a failure throws intl::Error naming the source file
// and line, the call that failed, and the library's own description of the status. Kernel launches are
// followed by CUDA_CHECK_LAUNCH(), which reports bad launch configurations at the launch site.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <cusolverDn.h>

#include <string>

#include "engine/error.h"

namespace intl::cuda {

// cuSOLVER has no status-to-string function: the names of its statuses.
inline const char* cusolver_status_string(cusolverStatus_t s) {
  switch (s) {
    case CUSOLVER_STATUS_SUCCESS: return "CUSOLVER_STATUS_SUCCESS";
    case CUSOLVER_STATUS_NOT_INITIALIZED: return "CUSOLVER_STATUS_NOT_INITIALIZED";
    case CUSOLVER_STATUS_ALLOC_FAILED: return "CUSOLVER_STATUS_ALLOC_FAILED";
    case CUSOLVER_STATUS_INVALID_VALUE: return "CUSOLVER_STATUS_INVALID_VALUE";
    case CUSOLVER_STATUS_ARCH_MISMATCH: return "CUSOLVER_STATUS_ARCH_MISMATCH";
    case CUSOLVER_STATUS_EXECUTION_FAILED: return "CUSOLVER_STATUS_EXECUTION_FAILED";
    case CUSOLVER_STATUS_INTERNAL_ERROR: return "CUSOLVER_STATUS_INTERNAL_ERROR";
    case CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED: return "CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED";
    case CUSOLVER_STATUS_NOT_SUPPORTED: return "CUSOLVER_STATUS_NOT_SUPPORTED";
    default: return "cuSOLVER status (see cusolver_common.h)";
  }
}

[[noreturn]] inline void throw_call_error(const char* library, const char* call, const char* file, int line,
                                          int code, const char* what) {
  throw Error(std::string(file) + ":" + std::to_string(line) + ": " + library + " call `" + call +
              "` failed with " + std::to_string(code) + " (" + what + ")");
}

}  // namespace intl::cuda

#define CUDA_CHECK(call)                                                                               \
  do {                                                                                                 \
    const cudaError_t intl_status_ = (call);                                                           \
    if (intl_status_ != cudaSuccess)                                                                   \
      ::intl::cuda::throw_call_error("CUDA", #call, __FILE__, __LINE__, int(intl_status_),             \
                                     cudaGetErrorString(intl_status_));                                \
  } while (0)

#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

#define CUBLAS_CHECK(call)                                                                             \
  do {                                                                                                 \
    const cublasStatus_t intl_status_ = (call);                                                        \
    if (intl_status_ != CUBLAS_STATUS_SUCCESS)                                                         \
      ::intl::cuda::throw_call_error("cuBLAS", #call, __FILE__, __LINE__, int(intl_status_),           \
                                     cublasGetStatusString(intl_status_));                             \
  } while (0)

#define CUDNN_CHECK(call)                                                                              \
  do {                                                                                                 \
    const cudnnStatus_t intl_status_ = (call);                                                         \
    if (intl_status_ != CUDNN_STATUS_SUCCESS)                                                          \
      ::intl::cuda::throw_call_error("cuDNN", #call, __FILE__, __LINE__, int(intl_status_),            \
                                     cudnnGetErrorString(intl_status_));                               \
  } while (0)

#define CUSOLVER_CHECK(call)                                                                           \
  do {                                                                                                 \
    const cusolverStatus_t intl_status_ = (call);                                                      \
    if (intl_status_ != CUSOLVER_STATUS_SUCCESS)                                                       \
      ::intl::cuda::throw_call_error("cuSOLVER", #call, __FILE__, __LINE__, int(intl_status_),         \
                                     ::intl::cuda::cusolver_status_string(intl_status_));              \
  } while (0)
