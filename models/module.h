// Modules: parameters and buffers by torchvision-style dotted names ("layer1.0.bn1.running_mean"),
// train/eval mode, and children. A module registers its tensors once in its constructor; `named_parameters`
// and `named_buffers` walk the tree in registration order, which is the order of optimizer state and of
// checkpoints.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace intl {

class Module {
 public:
  virtual ~Module() = default;

  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  std::vector<Tensor> parameters() const;
  int64_t parameter_count() const;

  void train(bool on = true);
  void eval() { train(false); }
  bool training() const { return training_; }
  // Moves parameters and buffers to a device (replacing them; optimizers must be built afterwards).
  void to(Device device);
  void zero_grad();

 protected:
  Tensor& register_parameter(const std::string& name, Tensor t);
  Tensor& register_buffer(const std::string& name, Tensor t);
  template <class M> std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  void collect(const std::string& prefix, bool params, std::vector<std::pair<std::string, Tensor>>& out) const;
  // Parameters and buffers are stored behind shared_ptr so that references handed out stay valid.
  std::vector<std::pair<std::string, std::shared_ptr<Tensor>>> params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace intl
