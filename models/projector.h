// The SSL projector of SPEC 3.4: (Linear without bias, BN, ReLU) for each hidden layer, then a Linear with
// bias, e.g. 512 -> 2048 -> 2048 -> 2048 on CIFAR. Names follow torch.nn.Sequential ("0.weight",
// "1.running_mean", ..., "6.bias"), as in the paper's code.
#pragma once
#include <memory>
#include <vector>

#include "models/layers.h"

namespace intl {

// `widths` are the layer outputs after the backbone's `in` features: {2048, 2048, 2048} builds three Linear
// layers (two hidden with BN and ReLU). Linear layers are initialised as torch.nn.Linear from `seed`.
std::shared_ptr<MLP> make_projector(int64_t in, const std::vector<int64_t>& widths, uint64_t seed,
                                    DType dtype = DType::f32);

}  // namespace intl
