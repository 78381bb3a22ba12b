// Philox4x32-10 counter-based random numbers (Salmon et al., SC'11). A stream is (seed, key2) and every
// value is a pure function of (seed, stream, counter), so results do not depend on thread count or on the
// order in which threads draw: a kernel that fills element i uses counter i. The CUDA backend uses the same
// function, so a seed means the same numbers on both devices.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define INTL_HD __host__ __device__ __forceinline__
#else
#define INTL_HD inline
#endif

namespace intl {

struct Philox4 {
  uint32_t v[4];
};

// One Philox4x32-10 block: four 32-bit outputs for the 128-bit counter (c0..c3) under the 64-bit key.
INTL_HD Philox4 philox4x32(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(0xD2511F53u) * c0;
    const uint64_t p1 = uint64_t(0xCD9E8D57u) * c2;
    const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
    const uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// Uniform in (0, 1], never 0 (safe for log), from 32 random bits.
INTL_HD float u32_to_unit_float(uint32_t x) { return (float(x >> 8) + 1.0f) * (1.0f / 16777216.0f); }
INTL_HD double u32_to_unit_double(uint32_t hi, uint32_t lo) {
  const uint64_t x = (uint64_t(hi) << 21) ^ uint64_t(lo >> 11);
  return (double(x & ((uint64_t(1) << 53) - 1)) + 1.0) * (1.0 / 9007199254740992.0);
}

// A seeded stream of random values addressed by a 64-bit counter. Copyable; the state is (seed, stream,
// offset). `next_block()` advances the offset, so sequential host code can draw without managing counters,
// while kernels use `block(i)` with an explicit index.
struct RandomStream {
  uint64_t seed = 0;
  uint64_t stream = 0;   // distinguishes independent users of one seed (data order, noise, init, ...)
  uint64_t offset = 0;   // next block index for sequential draws

  INTL_HD Philox4 block(uint64_t index) const {
    return philox4x32(uint32_t(index), uint32_t(index >> 32), uint32_t(stream), uint32_t(stream >> 32),
                      uint32_t(seed), uint32_t(seed >> 32));
  }
  Philox4 next_block() { return block(offset++); }
  // Sequential helpers for host code (one block per call: simple and still reproducible).
  uint32_t next_u32() { return next_block().v[0]; }
  double next_uniform() {  // in (0, 1]
    const Philox4 b = next_block();
    return u32_to_unit_double(b.v[0], b.v[1]);
  }
  // An integer uniform in [0, n) (n > 0), by 64-bit multiply-shift: bias below 2^-32.
  uint64_t next_below(uint64_t n) {
    const Philox4 b = next_block();
    const uint64_t x = (uint64_t(b.v[0]) << 32) | b.v[1];
    return uint64_t((static_cast<unsigned __int128>(x) * n) >> 64);
  }
  double next_normal() {  // Box-Muller
    const Philox4 b = next_block();
    const double u1 = u32_to_unit_double(b.v[0], b.v[1]), u2 = u32_to_unit_double(b.v[2], b.v[3]);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
};

// Named stream ids so that independent consumers of one seed never overlap.
enum StreamId : uint64_t {
  kStreamInit = 1,      // parameter initialisation
  kStreamData = 2,      // data generation and order
  kStreamAugment = 3,   // augmentations and noise views
  kStreamKernel = 4,    // random kernels called through the backend (dropout-like fills)
};

}  // namespace intl
