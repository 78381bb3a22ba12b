// The CUDA backend linked into the executable (the emulated build, tests/cuda_emulation): engine/backend.h's
// cuda_*() functions answer from its table directly.
#include "engine/cuda/entry.h"

namespace intl {

namespace {
const cuda::Entry& entry() { return *intl_cuda_entry(); }
}  // namespace

bool cuda_built() { return true; }
std::string cuda_backend_load_error() { return ""; }
bool cuda_available() { return entry().available(); }
std::string cuda_device_name() { return entry().device_name(); }
std::string cuda_unavailable_reason() { return entry().unavailable_reason(); }
const Backend& cuda_backend() { return entry().backend(); }
AllocatorStats cuda_allocator_stats() { return entry().allocator_stats(); }
ConvSearchStats conv_search_stats() { return entry().search_stats(); }
std::vector<ConvPassTime> conv_search_passes() { return entry().search_passes(); }

}  // namespace intl
