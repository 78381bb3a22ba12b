// The precision of float32 GEMMs and convolutions on the GPU: fp32 (default) matches the CPU to rounding;
// bf16 lets cuBLAS round GEMM inputs to bfloat16 on tensor cores (float32 accumulation and output) and runs
// convolutions in cuDNN's BFLOAT16 configuration on bfloat16 copies of their operands (float accumulation,
// float32 results; engine/cuda/conv.cpp). float64 and the CPU backend ignore it. Plain C++: the CPU-only build
// keeps the flag in stub.cpp, so `--precision` parses in every build.
#pragma once
#include <string>

#include "engine/error.h"
#include "engine/tensor.h"

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
// What a run on `device` computes its GEMMs and convolutions in ("fp32" on the CPU whatever was asked), for
// the results' config.
inline const char* effective_precision_name(Device device) {
  return device == Device::cuda ? matmul_precision_name(matmul_precision()) : "fp32";
}

}  // namespace intl
