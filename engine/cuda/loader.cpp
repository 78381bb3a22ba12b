// The CUDA backend of a CUDA build, loaded on demand (engine/cuda/entry.h): libintl_cuda.so beside the
// executable (else wherever the dynamic loader finds it), opened by the first question about a GPU. A machine
// without NVIDIA's driver library (libcuda.so.1) has no usable GPU, and is told so without loading the CUDA
// libraries at all. The statistics answer zeros until the backend is loaded: nothing has run on a GPU yet.
#include <dlfcn.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <mutex>
#include <string>

#include "engine/cuda/entry.h"
#include "engine/error.h"

namespace intl {
namespace {

constexpr const char* kLibrary = "libintl_cuda.so";

// The folder of the running executable, with a trailing slash ("" when /proc does not say).
std::string executable_dir() {
  char path[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return "";
  const std::string exe(path, size_t(n));
  return exe.substr(0, exe.rfind('/') + 1);
}

struct Loaded {
  const cuda::Entry* entry = nullptr;
  std::string error;  // why the library did not load ("" when it did)
};

Loaded open_library() {
  Loaded r;
  const std::string beside = executable_dir() + kLibrary;
  void* handle = dlopen(beside.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const std::string first = dlerror();
    handle = dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      r.error = "the CUDA backend did not load (" + first + "); rebuild intl, which builds " + kLibrary +
                " beside the executable";
      return r;
    }
  }
  using EntryFn = const cuda::Entry* (*)();
  const auto fn = reinterpret_cast<EntryFn>(dlsym(handle, "intl_cuda_entry"));
  const cuda::Entry* entry = fn ? fn() : nullptr;
  if (!entry || entry->version != cuda::kEntryVersion || entry->size != sizeof(cuda::Entry)) {
    r.error = std::string("the CUDA backend ") + kLibrary + " is from another build of intl; rebuild intl";
    return r;
  }
  r.entry = entry;
  return r;
}

std::mutex g_mutex;
std::atomic<const cuda::Entry*> g_entry{nullptr};  // set once the library has loaded

// The backend, loading it on first use; nullptr with `why` set when there is none to load.
const cuda::Entry* entry(std::string* why) {
  if (const cuda::Entry* e = g_entry.load(std::memory_order_acquire)) return e;
  std::lock_guard<std::mutex> lock(g_mutex);
  static std::string failure;  // decided once, under the lock
  static bool tried = false;
  if (!tried) {
    tried = true;
    if (!dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL)) {
      failure = std::string("no NVIDIA driver: ") + dlerror();
    } else {
      Loaded l = open_library();
      failure = l.error;
      g_entry.store(l.entry, std::memory_order_release);
    }
  }
  if (why) *why = failure;
  return g_entry.load(std::memory_order_acquire);
}

}  // namespace

bool cuda_built() { return true; }

std::string cuda_backend_load_error() {
  if (g_entry.load(std::memory_order_acquire)) return "";
  return open_library().error;  // without the driver check: whether this build's library loads at all
}

bool cuda_available() {
  const cuda::Entry* e = entry(nullptr);
  return e && e->available();
}

std::string cuda_device_name() {
  const cuda::Entry* e = entry(nullptr);
  return e ? e->device_name() : std::string();
}

std::string cuda_unavailable_reason() {
  std::string why;
  const cuda::Entry* e = entry(&why);
  return e ? e->unavailable_reason() : why;
}

const Backend& cuda_backend() {  // every CUDA op asks: once loaded, one atomic load
  if (const cuda::Entry* e = g_entry.load(std::memory_order_acquire)) return e->backend();
  std::string why;
  const cuda::Entry* e = entry(&why);
  if (!e) throw Error("no usable GPU (" + why + "); use --device cpu");
  return e->backend();
}

AllocatorStats cuda_allocator_stats() {
  const cuda::Entry* e = g_entry.load(std::memory_order_acquire);
  return e ? e->allocator_stats() : AllocatorStats{};
}

ConvSearchStats conv_search_stats() {
  const cuda::Entry* e = g_entry.load(std::memory_order_acquire);
  return e ? e->search_stats() : ConvSearchStats{};
}

std::vector<ConvPassTime> conv_search_passes() {
  const cuda::Entry* e = g_entry.load(std::memory_order_acquire);
  return e ? e->search_passes() : std::vector<ConvPassTime>{};
}

}  // namespace intl
