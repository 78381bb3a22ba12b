// The CPU instance of the backend table.
#include "engine/allocator.h"
#include "engine/cpu/conv_entries.h"
#include "engine/cpu/kernels.h"
#include "engine/error.h"

namespace intl {

const Backend& cpu_backend() {
  static const Backend table = {
      "cpu",
      cpu_alloc,
      cpu_free,
      cpu::copy,
      cpu::fill,
      cpu::random,
      cpu::unary,
      cpu::binary,
      cpu::reduce_sum,
      cpu::gemm,
      cpu::eigh,
      cpu::cholesky,
      cpu::trsm_lower,
      cpu::batchnorm_forward_train,
      cpu::batchnorm_backward_train,
      cpu::entries::conv2d_forward,
      cpu::entries::conv2d_backward_data,
      cpu::entries::conv2d_backward_filter,
      cpu::entries::maxpool2d_forward,
      cpu::entries::maxpool2d_backward,
      cpu::entries::batchnorm2d_forward,
      cpu::entries::batchnorm2d_backward,
      cpu::softmax_xent,
      cpu::sgd_step,
      cpu::adam_step,
  };
  return table;
}

Device resolve_device(const std::string& name) {
  if (name == "cpu") return Device::cpu;
  if (name == "cuda") {
    if (!cuda_available())
      throw UsageError("--device cuda: no usable GPU (this build " +
                       std::string(cuda_built() ? "has CUDA but no GPU answered" : "was built without CUDA") +
                       "); use --device cpu or auto");
    return Device::cuda;
  }
  if (name == "auto") return cuda_available() ? Device::cuda : Device::cpu;
  throw UsageError("--device: '" + name + "' is not one of cpu, cuda, auto");
}

}  // namespace intl
