// The CUDA instance of the backend table. cuda::backend() refuses to hand it out when no GPU answers, so a
// CUDA build on a machine without a GPU fails with a message instead of a driver error mid-run.
#include "engine/cuda/allocator.h"
#include "engine/cuda/context.h"
#include "engine/cuda/entry.h"
#include "engine/cuda/kernels.h"
#include "engine/error.h"

namespace intl::cuda {

const Backend& backend() {
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
  if (!probe()) throw Error("no usable GPU (" + probe_failure() + "); use --device cpu");
  return table;
}

}  // namespace intl::cuda
