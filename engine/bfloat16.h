// bfloat16 on the host: the top 16 bits of a float32 (8-bit exponent, 7-bit mantissa), rounded to nearest
// even as CUDA's __float2bfloat16_rn rounds, NaN kept a quiet NaN. The CPU never computes in it: it stores
// and converts (Tensor::to, to_vector), so that bfloat16 activations of a GPU run can be read and compared.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace intl {

inline uint16_t float_to_bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);  // NaN: quiet, sign kept
  u += 0x7fffu + ((u >> 16) & 1u);                                           // ties to even
  return uint16_t(u >> 16);
}

inline float bf16_bits_to_float(uint16_t b) {
  const uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

struct bfloat16 {
  uint16_t bits = 0;
  bfloat16() = default;
  // From any arithmetic value through float (a double is rounded twice, as a GPU's conversion does).
  template <class T, class = std::enable_if_t<std::is_arithmetic_v<T>>>
  explicit bfloat16(T v) : bits(float_to_bf16_bits(float(v))) {}
  operator float() const { return bf16_bits_to_float(bits); }
};
static_assert(sizeof(bfloat16) == 2, "bfloat16 is two bytes");

}  // namespace intl
