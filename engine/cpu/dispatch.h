// Dtype dispatch for CPU kernels: one switch per kernel call, then a loop templated on the element type.
#pragma once
#include <cstdint>
#include <string>

#include "engine/bfloat16.h"
#include "engine/error.h"
#include "engine/tensor.h"

namespace intl::cpu {

// Calls f(float()) or f(double()); other dtypes are an error naming the kernel.
template <class F> void dispatch_float(DType dtype, const char* kernel, F&& f) {
  if (dtype == DType::f32) f(float());
  else if (dtype == DType::f64) f(double());
  else throw Error(std::string(kernel) + " needs a float32 or float64 tensor, got " + dtype_name(dtype));
}

// Calls f(T()) for every element type (bfloat16 as engine/bfloat16.h's storage type: copy and fill only).
template <class F> void dispatch_all(DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32: f(float()); break;
    case DType::f64: f(double()); break;
    case DType::i32: f(int32_t()); break;
    case DType::i64: f(int64_t()); break;
    case DType::u8: f(uint8_t()); break;
    case DType::bf16: f(bfloat16()); break;
  }
}

}  // namespace intl::cpu
