// Shared by the op files: argument checks and the call that runs one backend kernel into a new tensor.
#pragma once
#include <functional>
#include <string>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/ops.h"

namespace intl::ops {

// Inputs of one op must share device and dtype.
inline void check_same(const char* op, const Tensor& a, const Tensor& b) {
  INTL_CHECK(a.defined() && b.defined(), std::string(op) + ": undefined tensor");
  INTL_CHECK(a.device() == b.device(), std::string(op) + ": tensors on different devices (" + device_name(a.device()) +
                                           " and " + device_name(b.device()) + "); move one with .to()");
  INTL_CHECK(a.dtype() == b.dtype(), std::string(op) + ": dtypes differ (" + dtype_name(a.dtype()) + " and " +
                                         dtype_name(b.dtype()) + ")");
}

inline Tensor empty_like(const Tensor& t) { return Tensor::empty(t.shape(), t.dtype(), t.device()); }

// Numpy broadcasting of two shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b);
// y = op(x, s) through the backend's unary kernel.
Tensor unary_kernel(UnaryOp op, const Tensor& x, double s = 0.0);
// out = op(a, b) with broadcasting, through the backend's binary kernel.
Tensor binary_kernel(BinaryOp op, const Tensor& a, const Tensor& b);
// A constant built on the host (identity, triangle masks) on `device`: on the CPU built each call; on a GPU
// built and copied over once per process and `key`, then cloned on the device, so that backward passes ask
// for no host round trip (each would be a synchronisation).
Tensor host_constant(const std::string& key, Device device, const std::function<Tensor()>& build_on_cpu);

}  // namespace intl::ops
