// The CUDA backend's table of entry points (engine/cuda/entry.h).
#include "engine/cuda/entry.h"

extern "C" const intl::cuda::Entry* intl_cuda_entry() {
  using namespace intl::cuda;
  static const Entry entry = {
      kEntryVersion, sizeof(Entry),   available,    device_name,   unavailable_reason,
      backend,       allocator_stats, search_stats, search_passes,
  };
  return &entry;
}
