// The CPU caching allocator: size classes (at most 25% waste), the free lists (a freed block is handed out again,
// the system asked once), and the counters --verbose prints.
#include <doctest/doctest.h>

#include <cstdint>

#include "engine/allocator.h"
#include "engine/tensor.h"

using namespace intl;

namespace {
void* fake(uintptr_t at) { return reinterpret_cast<void*>(at); }  // the cache never touches a block's memory
}  // namespace

TEST_CASE("size classes: 64-byte steps up to 4 KiB, then four per power of two") {
  const SizeClassCache cache(64, 4096);
  CHECK(cache.size_class(1) == 64);
  CHECK(cache.size_class(64) == 64);
  CHECK(cache.size_class(65) == 128);
  CHECK(cache.size_class(4096) == 4096);
  CHECK(cache.size_class(4097) == 5120);
  CHECK(cache.size_class(5000) == 5120);
  CHECK(cache.size_class(8192) == 8192);
  CHECK(cache.size_class(8193) == 10240);
  CHECK(cache.size_class((size_t(1) << 20) + 1) == (size_t(1) << 20) + (size_t(1) << 18));
  for (size_t bytes = 4097; bytes < (size_t(1) << 22); bytes = bytes * 9 / 8 + 7) {
    CAPTURE(bytes);
    const size_t cls = cache.size_class(bytes);
    CHECK(cls >= bytes);
    CHECK(double(cls) <= 1.25 * double(bytes));
    CHECK(cache.size_class(cls) == cls);
  }
}

TEST_CASE("a size-class cache hands a freed block out again and counts active, peak and cached bytes") {
  SizeClassCache cache(64, 4096);
  CHECK(cache.take(128) == nullptr);
  cache.add_new(128);
  cache.add_new(5120);
  AllocatorStats s = cache.stats();
  CHECK(s.system_allocs == 2);
  CHECK(s.active_bytes == 128 + 5120);
  CHECK(s.peak_bytes == 128 + 5120);
  CHECK(s.cached_bytes == 0);
  cache.give_back(fake(0x1000), 5120);
  s = cache.stats();
  CHECK(s.active_bytes == 128);
  CHECK(s.cached_bytes == 5120);
  CHECK(s.peak_bytes == 128 + 5120);  // the peak stays
  CHECK(cache.take(128) == nullptr);  // another class
  CHECK(cache.take(5120) == fake(0x1000));
  s = cache.stats();
  CHECK(s.active_bytes == 128 + 5120);
  CHECK(s.cached_bytes == 0);
  CHECK(s.system_allocs == 2);
  cache.give_back(fake(0x1000), 5120);
  cache.give_back(fake(0x2000), 128);
  size_t released = 0;
  cache.release_all([&](void*) { ++released; });
  CHECK(released == 2);
  CHECK(cache.stats().cached_bytes == 0);
  CHECK(cache.take(128) == nullptr);
}

// A tensor freed and made again of the same class reuses the block: no new system allocation.
TEST_CASE("the CPU allocator reuses a freed tensor's memory") {
  const Shape shape{1237, 3};  // a size class no other test is likely to hold free
  const void* first = nullptr;
  { first = Tensor::empty(shape, DType::f64).raw_data(); }
  const AllocatorStats before = cpu_allocator_stats();
  const Tensor again = Tensor::empty(shape, DType::f64);
  const AllocatorStats after = cpu_allocator_stats();
  CHECK(again.raw_data() == first);
  CHECK(after.system_allocs == before.system_allocs);
  const size_t cls = SizeClassCache(64, 4096).size_class(1237 * 3 * 8);
  CHECK(cls == 32768);
  CHECK(before.cached_bytes - after.cached_bytes == cls);
  CHECK(after.active_bytes - before.active_bytes == cls);
  CHECK(after.peak_bytes >= after.active_bytes);
}
