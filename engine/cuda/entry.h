// The CUDA backend's entry points as one table. The rest of intl reaches the backend only through the cuda_*()
// functions of engine/backend.h and engine/conv_algorithms.h, which one of three files defines:
//   stub.cpp    a build without CUDA: every answer is "built without CUDA";
//   loader.cpp  a CUDA build: the backend is libintl_cuda.so beside the executable, opened on the first question
//               about a GPU, so that a command that needs none never loads the CUDA libraries (about 0.5 s and
//               55,000 page faults a start);
//   linked.cpp  the emulated build (tests/cuda_emulation): the backend is linked in.
// Plain C++: no CUDA header.
#pragma once
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/backend.h"
#include "engine/conv_algorithms.h"

namespace intl::cuda {

// Bumped whenever the table changes; the loader refuses a library built with another.
constexpr int kEntryVersion = 1;

// The backend's own answers (context.cpp, backend.cpp, allocator.cpp, conv.cpp), gathered by entry.cpp.
bool available();
std::string device_name();
std::string unavailable_reason();
const Backend& backend();
AllocatorStats allocator_stats();
ConvSearchStats search_stats();
std::vector<ConvPassTime> search_passes();

struct Entry {
  int version;
  size_t size;  // sizeof(Entry) where the library was built
  bool (*available)();
  std::string (*device_name)();         // "" when none
  std::string (*unavailable_reason)();  // "" when available
  const Backend& (*backend)();          // throws when no GPU answers
  AllocatorStats (*allocator_stats)();
  ConvSearchStats (*search_stats)();
  std::vector<ConvPassTime> (*search_passes)();
};

}  // namespace intl::cuda

// Defined in the backend (engine/cuda/entry.cpp); the loader looks it up by this unmangled name.
extern "C" const intl::cuda::Entry* intl_cuda_entry();
