// The reverse walk: topological order from the loss, gradients accumulated per (node, output) and into leaves.
#include "engine/autograd.h"

#include <unordered_set>

#include "engine/error.h"
#include "engine/ops.h"

namespace intl {
namespace {
thread_local bool t_grad_enabled = true;

// Adds g into *slot (defining it on first use). Out of place, so that saved tensors are never mutated.
void accumulate(Tensor& slot, const Tensor& g) { slot = slot.defined() ? add(slot, g) : g; }
}  // namespace

bool grad_enabled() { return t_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = previous_; }

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const char* name, const std::vector<Tensor>& inputs, std::vector<Tensor*> outputs,
            std::function<std::vector<Tensor>(const std::vector<Tensor>&)> backward) {
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs = inputs;
  node->backward = std::move(backward);
  node->num_outputs = int(outputs.size());
  node->precision = matmul_precision();
  for (size_t i = 0; i < outputs.size(); ++i) {
    TensorImpl* impl = outputs[i]->impl();
    impl->requires_grad = true;
    impl->grad_fn = node;
    impl->output_index = int(i);
  }
}

void record(const char* name, const std::vector<Tensor>& inputs, Tensor& output,
            std::function<std::vector<Tensor>(const Tensor&)> backward) {
  record(name, inputs, std::vector<Tensor*>{&output},
         [bw = std::move(backward)](const std::vector<Tensor>& g) { return bw(g[0]); });
}

Tensor sum_to_shape(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  const int64_t lead = grad.dim() - int64_t(shape.size());
  INTL_CHECK(lead >= 0, "gradient of shape " + shape_str(grad.shape()) + " cannot reduce to " + shape_str(shape));
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < grad.dim(); ++i) {
    if (i < lead) {
      axes.push_back(i);
    } else if (shape[size_t(i - lead)] == 1 && grad.shape()[size_t(i)] != 1) {
      axes.push_back(i);
    } else {
      INTL_CHECK(shape[size_t(i - lead)] == grad.shape()[size_t(i)],
                 "gradient of shape " + shape_str(grad.shape()) + " does not match input shape " + shape_str(shape));
    }
  }
  Tensor r = sum(grad, axes, /*keepdim=*/true);
  return reshape(r, shape);
}

void Tensor::backward(const Tensor& grad_output) const {
  INTL_CHECK(requires_grad(), "backward() on a tensor that does not require grad");
  Tensor seed = grad_output;
  if (!seed.defined()) {
    INTL_CHECK(numel() == 1, "backward() without a gradient needs a scalar, not shape " + shape_str(shape()));
    seed = Tensor::ones(shape(), dtype(), device());
  }
  NoGradGuard no_grad;  // backward functions compute with plain ops

  // Leaf: accumulate and stop.
  if (!impl_->grad_fn) {
    Tensor g = impl_->grad ? add(Tensor(impl_->grad), seed) : seed;
    impl_->grad = g.impl_;
    return;
  }

  // Topological order by iterative depth-first search over grad_fn edges.
  std::vector<Node*> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<Node*, size_t>> stack{{impl_->grad_fn.get(), 0}};
  seen.insert(impl_->grad_fn.get());
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      const Tensor& in = node->inputs[next++];
      if (in.defined() && in.impl()->grad_fn && !seen.count(in.impl()->grad_fn.get())) {
        seen.insert(in.impl()->grad_fn.get());
        stack.push_back({in.impl()->grad_fn.get(), 0});
      }
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }

  Node* root = impl_->grad_fn.get();
  root->grad_outputs.assign(size_t(root->num_outputs), Tensor());
  root->grad_outputs[size_t(impl_->output_index)] = seed;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = *it;
    if (node->grad_outputs.empty()) continue;  // nothing reached it
    std::vector<Tensor> grads;
    {
      MatmulPrecisionScope precision(node->precision);
      grads = node->backward(node->grad_outputs);
    }
    node->grad_outputs.clear();
    INTL_CHECK(grads.size() == node->inputs.size(),
               std::string("backward of ") + node->name + " returned the wrong number of gradients");
    for (size_t i = 0; i < grads.size(); ++i) {
      const Tensor& in = node->inputs[i];
      if (!grads[i].defined() || !in.defined() || !in.requires_grad()) continue;
      Tensor g = sum_to_shape(grads[i], in.shape());
      INTL_CHECK(g.dtype() == in.dtype(), std::string("backward of ") + node->name + ": gradient dtype " +
                                              dtype_name(g.dtype()) + " for input of dtype " + dtype_name(in.dtype()));
      if (Node* prev = in.impl()->grad_fn.get()) {
        if (prev->grad_outputs.empty()) prev->grad_outputs.assign(size_t(prev->num_outputs), Tensor());
        accumulate(prev->grad_outputs[size_t(in.impl()->output_index)], g);
      } else {
        Tensor slot = in.impl()->grad ? Tensor(in.impl()->grad) : Tensor();
        accumulate(slot, g);
        in.impl()->grad = slot.impl_;
      }
    }
  }
}

}  // namespace intl
