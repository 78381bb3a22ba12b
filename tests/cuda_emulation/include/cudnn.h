// CUDA emulation (tests/cuda_emulation): the cuDNN names engine/cuda/check.h and context.h mention. No cuDNN
// call is emulated: the emulated backend answers convolutions with the CPU's.
#pragma once
#include "cuda_runtime.h"
struct cudnnContext;
using cudnnHandle_t = cudnnContext*;
enum cudnnStatus_t { CUDNN_STATUS_SUCCESS = 0 };
inline const char* cudnnGetErrorString(cudnnStatus_t) { return "cuDNN status"; }
