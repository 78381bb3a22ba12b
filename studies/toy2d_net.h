// The toy Siamese encoder of SPEC 3.1, FC(2,16)+BN+ReLU, FC(16,16)+BN+ReLU, FC(16,2), written as plain
// double-precision forward/backward pairs over small fixed arrays (llm.c style): one parameter slab, one
// gradient slab, activations allocated once per run, so a training step allocates nothing. It computes what
// models/layers.h's MLP computes (BatchNorm with batch statistics, eps 1e-5; running statistics are not kept
// because the toy never evaluates); tests/test_toy2d.cpp checks its gradients against the tape engine.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "models/layers.h"

namespace intl::toy2d {

inline constexpr int kIn = 2, kHidden = 16, kOut = 2;

// The parameter slab. Names and layouts follow torch.nn.Sequential ("0.weight" is w1, (out, in) row-major).
struct Params {
  double w1[kHidden * kIn], b1[kHidden];          // 0: Linear(2, 16)
  double g1[kHidden], be1[kHidden];               // 1: BatchNorm1d(16) weight, bias
  double w2[kHidden * kHidden], b2[kHidden];      // 3: Linear(16, 16)
  double g2[kHidden], be2[kHidden];               // 4: BatchNorm1d(16)
  double w3[kOut * kHidden], b3[kOut];            // 6: Linear(16, 2)
};
inline constexpr int kParamCount = int(sizeof(Params) / sizeof(double));  // 418
inline double* slab(Params& p) { return reinterpret_cast<double*>(&p); }
inline const double* slab(const Params& p) { return reinterpret_cast<const double*>(&p); }

// The engine MLP({2, 16, 16, 2}, hidden bias) holds the same parameters under the same names: copy both ways.
// params_from_named also reads gradients given as (name, tensor) pairs.
Params params_from_named(const std::vector<std::pair<std::string, Tensor>>& named);
inline Params params_from_mlp(const MLP& mlp) { return params_from_named(mlp.named_parameters()); }
void params_to_mlp(const Params& params, MLP& mlp);

// One view's activations (m rows) and what the backward reads. Sized once by `resize`.
struct Activations {
  int m = 0;
  std::vector<double> x;         // (m, 2) input
  std::vector<double> xhat1;     // (m, 16) BN-normalised pre-activation of layer 1
  std::vector<double> h1;        // (m, 16) after BN + ReLU
  std::vector<double> xhat2;     // (m, 16)
  std::vector<double> h2;        // (m, 16)
  std::vector<double> z;         // (m, 2) embedding
  double invstd1[kHidden], invstd2[kHidden];
  void resize(int rows);
};

// Scratch for the backward (shared by the views).
struct BackwardScratch {
  std::vector<double> dh2, da2, dh1, da1;  // (m, 16) each
  void resize(int rows);
};

// z = net(x) with batch statistics.
void net_forward(const Params& p, Activations& act);
// Adds d(loss)/d(params) for dz = d(loss)/d(z) into grads.
void net_backward(const Params& p, const Activations& act, const double* dz, Params& grads, BackwardScratch& scratch);

}  // namespace intl::toy2d
