// The CPU instance of the backend table, and the --device choice.
#include <cstdio>
#include <mutex>
#include <string>

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
      [] {},  // synchronize: CPU kernels return when done
  };
  return table;
}

Device resolve_device(const std::string& name) {
  if (name == "cpu") return Device::cpu;
  if (name == "cuda") {
    if (!cuda_available())
      throw UsageError("--device cuda: no usable GPU (" +
                       (cuda_built() ? "this build has CUDA, but: " + cuda_unavailable_reason()
                                     : std::string("this intl was built without CUDA")) +
                       "); use --device cpu or auto");
    return Device::cuda;
  }
  if (name == "auto") {
    // Said once per process on stderr, unless a build without CUDA takes the CPU as it always does.
    const bool gpu = cuda_available();
    static std::once_flag said;
    if (gpu || cuda_built())
      std::call_once(said, [gpu] {
        std::fprintf(stderr, "intl: --device auto: %s\n",
                     gpu ? ("cuda (" + cuda_device_name() + ")").c_str()
                         : ("cpu (no GPU answered: " + cuda_unavailable_reason() + ")").c_str());
      });
    return gpu ? Device::cuda : Device::cpu;
  }
  throw UsageError("--device: '" + name + "' is not one of cpu, cuda, auto");
}

}  // namespace intl
