// Tape autograd. An op that produces tensors from inputs that need gradients records a Node: the inputs,
// and a backward function that maps the outputs' gradients to the inputs' gradients, capturing exactly what
// it reads. `Tensor::backward` sorts the nodes reachable from the loss once, walks them in reverse, and
// accumulates (fan-out adds). Gradients of broadcast inputs are summed back to the input's shape here and
// nowhere else. A node's backward runs under the GEMM/convolution precision its forward ran under
// (engine/precision.h), so a loss computed in an fp32 scope is differentiated in fp32 too.
#pragma once
#include <functional>
#include <vector>

#include "engine/precision.h"
#include "engine/tensor.h"

namespace intl {

struct Node {
  const char* name = "";
  std::vector<Tensor> inputs;  // gradients flow to those that require grad
  // Given the gradients of the outputs (undefined where an output got none), returns one gradient per input
  // (undefined where the input needs none). A returned gradient may have the shape the input had *after*
  // broadcasting; the engine reduces it.
  std::function<std::vector<Tensor>(const std::vector<Tensor>& grad_outputs)> backward;
  int num_outputs = 1;
  MatmulPrecision precision = MatmulPrecision::fp32;  // in effect when the node was recorded
  std::vector<Tensor> grad_outputs;  // filled during the walk, released after use
};

// Whether ops record nodes on this thread (default true).
bool grad_enabled();

// RAII guard that turns recording off (evaluation, optimizer steps, metrics).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when grad mode is on and any input requires grad: the op must record a node.
bool needs_grad(const std::vector<Tensor>& inputs);

// Attaches a node producing `outputs` from `inputs` (call only when needs_grad(inputs)).
void record(const char* name, const std::vector<Tensor>& inputs, std::vector<Tensor*> outputs,
            std::function<std::vector<Tensor>(const std::vector<Tensor>&)> backward);

// Single-output convenience: backward receives the output's gradient.
void record(const char* name, const std::vector<Tensor>& inputs, Tensor& output,
            std::function<std::vector<Tensor>(const Tensor&)> backward);

// Sums `grad` over broadcast axes so that it has `shape` (leading axes dropped, extent-1 axes summed).
Tensor sum_to_shape(const Tensor& grad, const Shape& shape);

}  // namespace intl
