// The CPU backend's kernels: the reference implementation of every entry of the backend table, in float
// and double. engine/cpu/backend.cpp assembles them into the table.
#pragma once
#include "engine/backend.h"

namespace intl::cpu {

void copy(const Tensor& src, const Tensor& dst);
void fill(const Tensor& dst, double value);
void random(const Tensor& dst, bool uniform, double lo, double hi, uint64_t seed, uint64_t stream);
void unary(UnaryOp op, const Tensor& x, const Tensor& y, double s);
void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out);
void reduce_sum(const Tensor& x, const Tensor& out);

void gemm(const GemmArgs& args);
int eigh(const Tensor& a, const Tensor& values, const Tensor& vectors);
int cholesky(const Tensor& a);
void trsm_lower(const Tensor& l, const Tensor& b, bool transpose);

void batchnorm_forward_train(const BatchNormArgs& args, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd,
                             const Tensor& running_mean, const Tensor& running_var);
void batchnorm_backward_train(const BatchNormArgs& args, const Tensor& x, const Tensor& gamma,
                              const Tensor& save_mean, const Tensor& save_invstd, const Tensor& dy,
                              const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta);
void softmax_xent(const Tensor& logits, const Tensor& labels, const Tensor& loss, const Tensor& dlogits);
void sgd_step(const SgdArgs& args, const std::vector<SgdParam>& params);
void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq, double lr,
               double beta1, double beta2, double eps, double weight_decay, bool decoupled, int64_t step);

}  // namespace intl::cpu
