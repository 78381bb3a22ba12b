// The precision of float32 matrix products and convolutions on the GPU. fp32 (the default) computes in
// full float32, so GPU results match the CPU reference to rounding; bf16 lets cuBLAS round the inputs of
// float32 GEMMs to bfloat16 on tensor cores (float32 accumulation and output) and lets cuDNN use tensor-core
// (TF32) convolutions. float64 and the CPU backend ignore the setting. Plain C++ (the CPU-only build keeps
// the flag in stub.cpp so that `--precision` parses everywhere).
#pragma once
#include <string>

#include "engine/error.h"

namespace intl {

enum class MatmulPrecision { fp32, bf16 };

void set_matmul_precision(MatmulPrecision precision);
MatmulPrecision matmul_precision();

// "fp32" | "bf16" -> a precision; anything else is a UsageError naming the option.
inline MatmulPrecision parse_matmul_precision(const std::string& name) {
  if (name == "fp32") return MatmulPrecision::fp32;
  if (name == "bf16") return MatmulPrecision::bf16;
  throw UsageError("--precision: '" + name + "' is not one of fp32, bf16");
}
inline const char* matmul_precision_name(MatmulPrecision precision) {
  return precision == MatmulPrecision::bf16 ? "bf16" : "fp32";
}

}  // namespace intl
