#include "engine/precision.h"

#include <atomic>

namespace intl {
namespace {
std::atomic<MatmulPrecision> g_precision{MatmulPrecision::fp32};
thread_local std::optional<MatmulPrecision> t_override;
std::atomic<int64_t> g_counts[2] = {};
std::atomic<bool> g_bf16_activations{true};
}  // namespace

void set_matmul_precision(MatmulPrecision precision) { g_precision = precision; }

MatmulPrecision matmul_precision() { return t_override ? *t_override : g_precision.load(); }

MatmulPrecisionScope::MatmulPrecisionScope(MatmulPrecision precision) : saved_(t_override) {
  t_override = precision;
}

MatmulPrecisionScope::~MatmulPrecisionScope() { t_override = saved_; }

bool bf16_activations(DType dtype, Device device) {
  return device == Device::cuda && matmul_in_bf16(dtype) && g_bf16_activations.load();
}
void set_bf16_activations(bool on) { g_bf16_activations = on; }

MatmulCounts matmul_counts() { return {g_counts[0].load(), g_counts[1].load()}; }

void count_matmul(bool bf16) { g_counts[bf16 ? 1 : 0].fetch_add(1, std::memory_order_relaxed); }

}  // namespace intl
