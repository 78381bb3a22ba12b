// The precision of float32 GEMMs and convolutions. fp32 (the default) matches the CPU to rounding; bf16 lets
// the GPU round the operands to bfloat16 on tensor cores with float32 accumulation and output (cuBLAS's
// 32F_FAST_16BF compute type; cuDNN's BFLOAT16 configuration on bfloat16 copies, engine/cuda/conv.cpp). float64
// and the CPU backend ignore it.
//
// The setting is the run's (`--precision`, set_matmul_precision); a MatmulPrecisionScope overrides it on its
// thread for a region, and the losses open an fp32 one, so whitening, eigensolvers and losses stay float32 under
// --precision bf16 while the network's convolutions and linear layers run in bfloat16. The ops read the
// precision when they run forward and put it in the backend's arguments (GemmArgs::bf16, Conv2dArgs::bf16); their
// backward runs under the precision of their forward, whenever the tape replays it.
//
// On a GPU, bf16 also holds a convolutional network's image activations in bfloat16 (DType::bf16), as PyTorch's
// autocast does: a ResNet casts its input once, its convolutions, fused batch norms (float32 statistics and
// parameters) and pooling read and write bfloat16, and global average pooling hands float32 features to the
// projector. Half the bytes through every memory-bound kernel of the backbone, and no per-convolution
// conversions. set_bf16_activations(false) keeps float32 activations with bfloat16 convolutions (the
// operands rounded into copies per convolution), for comparing the two (`intl bench train --bf16-activations`).
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "engine/error.h"
#include "engine/tensor.h"

namespace intl {

enum class MatmulPrecision { fp32, bf16 };

// The run's precision (process-wide).
void set_matmul_precision(MatmulPrecision precision);
// The precision in effect on this thread: the innermost MatmulPrecisionScope's, else the run's.
MatmulPrecision matmul_precision();

// Overrides the precision on this thread until destroyed; scopes nest.
class MatmulPrecisionScope {
 public:
  explicit MatmulPrecisionScope(MatmulPrecision precision);
  ~MatmulPrecisionScope();
  MatmulPrecisionScope(const MatmulPrecisionScope&) = delete;
  MatmulPrecisionScope& operator=(const MatmulPrecisionScope&) = delete;

 private:
  std::optional<MatmulPrecision> saved_;
};

// Whether a float32 GEMM or convolution issued now on `dtype` tensors runs in bfloat16 (what the ops put in
// the backend's arguments).
inline bool matmul_in_bf16(DType dtype) {
  return dtype == DType::f32 && matmul_precision() == MatmulPrecision::bf16;
}

// Whether a network's image activations of `dtype` on `device` are to be held in bfloat16: float32 ones on a
// GPU with bf16 precision in effect, unless set_bf16_activations(false) turned them off (they are on by default).
bool bf16_activations(DType dtype, Device device);
void set_bf16_activations(bool on);

// Float32 GEMMs and convolutions issued by the ops since the process started, by the precision they asked for
// (forward and backward; the CPU computes both in float32). `--verbose` prints them on a GPU, and they show
// that a bf16 run keeps its losses in float32.
struct MatmulCounts {
  int64_t fp32 = 0, bf16 = 0;
};
MatmulCounts matmul_counts();
void count_matmul(bool bf16);

// "fp32" | "bf16" -> a precision; anything else is a UsageError naming the option.
inline MatmulPrecision parse_matmul_precision(const std::string& name) {
  if (name == "fp32") return MatmulPrecision::fp32;
  if (name == "bf16") return MatmulPrecision::bf16;
  throw UsageError("--precision: '" + name + "' is not one of fp32, bf16");
}
inline const char* matmul_precision_name(MatmulPrecision precision) {
  return precision == MatmulPrecision::bf16 ? "bf16" : "fp32";
}
// What a run on `device` computes its network's GEMMs and convolutions in ("fp32" on the CPU whatever was
// asked), for the results' config.
inline const char* effective_precision_name(Device device) {
  return device == Device::cuda ? matmul_precision_name(matmul_precision()) : "fp32";
}

}  // namespace intl
