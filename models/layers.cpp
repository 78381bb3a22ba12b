// Linear, BatchNorm1d and MLP.
#include "models/layers.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/random.h"

namespace intl {

Linear::Linear(int64_t in, int64_t out, bool bias, uint64_t seed, uint64_t seed_stream, DType dtype)
    : weight_(register_parameter("weight", Tensor::rand({out, in}, -1.0 / std::sqrt(double(in)),
                                                        1.0 / std::sqrt(double(in)), seed,
                                                        kStreamInit * 1000003 + 2 * seed_stream, dtype))),
      bias_(bias ? register_parameter("bias", Tensor::rand({out}, -1.0 / std::sqrt(double(in)),
                                                           1.0 / std::sqrt(double(in)), seed,
                                                           kStreamInit * 1000003 + 2 * seed_stream + 1, dtype))
                 : weight_) {
  if (!bias) has_no_bias_ = true;
}

Tensor Linear::forward(const Tensor& x) const { return linear(x, weight_, has_no_bias_ ? Tensor() : bias_); }

BatchNorm1d::BatchNorm1d(int64_t features, DType dtype, double momentum, double eps)
    : weight_(register_parameter("weight", Tensor::ones({features}, dtype))),
      bias_(register_parameter("bias", Tensor::zeros({features}, dtype))),
      running_mean_(register_buffer("running_mean", Tensor::zeros({features}, dtype))),
      running_var_(register_buffer("running_var", Tensor::ones({features}, dtype))),
      num_batches_tracked_(register_buffer("num_batches_tracked", Tensor::zeros({}, DType::i64))),
      momentum_(momentum),
      eps_(eps) {}

Tensor BatchNorm1d::forward(const Tensor& x) const {
  return batch_norm_1d(x, weight_, bias_, running_mean_, running_var_, training(), momentum_, eps_);
}

MLP::MLP(const std::vector<int64_t>& widths, bool hidden_bias, uint64_t seed, DType dtype) {
  const size_t layers = widths.size() - 1;
  int index = 0;
  for (size_t i = 0; i < layers; ++i) {
    const bool last = i + 1 == layers;
    linears_.push_back(register_module(std::to_string(index++),
                                       std::make_shared<Linear>(widths[i], widths[i + 1], last || hidden_bias, seed,
                                                                i, dtype)));
    if (!last) {
      norms_.push_back(register_module(std::to_string(index++), std::make_shared<BatchNorm1d>(widths[i + 1], dtype)));
      index++;  // the ReLU's slot in torch.nn.Sequential
    }
  }
}

Tensor MLP::forward(const Tensor& x) const {
  Tensor h = x;
  for (size_t i = 0; i < linears_.size(); ++i) {
    h = linears_[i]->forward(h);
    if (i < norms_.size()) h = relu(norms_[i]->forward(h));
  }
  return h;
}

}  // namespace intl
