// The CUDA backend of a build without CUDA: every entry throws, so no op file needs an #ifdef.
#include "engine/backend.h"
#include "engine/error.h"

namespace intl {

bool cuda_built() { return false; }
bool cuda_available() { return false; }
std::string cuda_device_name() { return ""; }

const Backend& cuda_backend() {
  throw Error("this intl was built without CUDA (configure with -DINTL_CUDA=ON where nvcc and cuDNN exist)");
}

}  // namespace intl
