// The CUDA backend of a build without CUDA (engine/cuda/entry.h): every entry throws, so no op file needs an
// #ifdef. The (empty) device allocator and convolution-search counters exist here too, so the CLI reads them in
// every build.
#include "engine/backend.h"
#include "engine/conv_algorithms.h"
#include "engine/cuda/allocator.h"
#include "engine/error.h"

namespace intl {

bool cuda_built() { return false; }
bool cuda_available() { return false; }
std::string cuda_device_name() { return ""; }
std::string cuda_unavailable_reason() { return "this intl was built without CUDA"; }
std::string cuda_backend_load_error() { return "this intl was built without CUDA"; }

const Backend& cuda_backend() {
  throw Error("this intl was built without CUDA (configure with -DINTL_CUDA=ON where nvcc and cuDNN exist)");
}

AllocatorStats cuda_allocator_stats() { return {}; }
ConvSearchStats conv_search_stats() { return {}; }
std::vector<ConvPassTime> conv_search_passes() { return {}; }

}  // namespace intl
