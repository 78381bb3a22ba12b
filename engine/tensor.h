// Tensor: a shape, strides and dtype over reference-counted storage on one device, plus the autograd fields
// (requires_grad, the node that produced it, the accumulated gradient of a leaf). Views (reshape of a
// contiguous tensor, transpose, slice) share storage; everything else allocates. Host/device copies happen
// only through `to(Device)`.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace intl {

// bf16 (bfloat16) holds a network's activations on a GPU under --precision bf16 (engine/precision.h); the CPU
// only stores and converts it.
enum class DType : uint8_t { f32, f64, i32, i64, u8, bf16 };
enum class Device : uint8_t { cpu, cuda };
using Shape = std::vector<int64_t>;

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
const char* device_name(Device device);
std::string shape_str(const Shape& shape);
int64_t shape_numel(const Shape& shape);
inline bool is_float(DType d) { return d == DType::f32 || d == DType::f64; }
// Any floating dtype, bfloat16 included: what may carry gradients and be cast.
inline bool is_floating(DType d) { return is_float(d) || d == DType::bf16; }
// The dtype a stored dtype computes in, and that the per-channel tensors beside it (batch-norm statistics and
// parameters) hold: float32 for bfloat16, else itself.
inline DType compute_dtype(DType stored) { return stored == DType::bf16 ? DType::f32 : stored; }

// Owns one device allocation; returns it to the device's allocator when the last tensor lets go.
struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device = Device::cpu;
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

struct Node;
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;       // in elements
  DType dtype = DType::f32;
  Device device = Device::cpu;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient (leaves only)
  std::shared_ptr<Node> grad_fn;     // the op that produced this tensor (non-leaves)
  int output_index = 0;              // which output of grad_fn this is
  uint64_t version = 0;              // set by in-place updates to a process-wide fresh value (never reused),
                                     // so kernels may key caches on (address, version); 0: never updated
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Creation. `empty` leaves memory uninitialised.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor scalar(double value, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype = DType::f32);
  static Tensor from_floats(const float* values, const Shape& shape);
  // Standard normal / uniform [lo, hi) values from the counter-based generator (same on every device).
  static Tensor randn(const Shape& shape, uint64_t seed, uint64_t stream, DType dtype = DType::f32,
                      Device device = Device::cpu);
  static Tensor rand(const Shape& shape, double lo, double hi, uint64_t seed, uint64_t stream,
                     DType dtype = DType::f32, Device device = Device::cpu);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl_->shape; }
  const Shape& strides() const { return impl_->strides; }
  int64_t dim() const { return int64_t(impl_->shape.size()); }
  int64_t size(int64_t axis) const;  // negative axis counts from the end
  int64_t numel() const { return shape_numel(impl_->shape); }
  DType dtype() const { return impl_->dtype; }
  Device device() const { return impl_->device; }
  bool is_contiguous() const;
  TensorImpl* impl() const { return impl_.get(); }

  // Raw pointer to the first element. Checks the element type.
  template <class T> T* data() const;
  void* raw_data() const;

  // Copies: always a new tensor.
  Tensor clone() const;                // differentiable
  Tensor contiguous() const;           // self if contiguous, else a differentiable copy
  Tensor to(Device device) const;      // explicit host/device copy (not differentiable)
  Tensor to(DType dtype) const;        // dtype conversion (not differentiable)
  Tensor detach() const;               // shares storage, no autograd history

  // Host-side reads (copy from the device when needed).
  double item() const;
  std::vector<double> to_vector() const;
  std::vector<float> to_floats() const;

  // In-place (not recorded on the tape; bump the version).
  void fill_(double value);
  void copy_(const Tensor& src);  // same shape; src may be strided or on another device
  void bump_version() const;
  uint64_t version() const { return impl_->version; }

  // Autograd.
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  Tensor& requires_grad_(bool value = true);
  Tensor grad() const;          // undefined if none accumulated
  void zero_grad() const;       // drops the accumulated gradient
  void backward(const Tensor& grad_output = Tensor()) const;  // scalar loss: grad_output defaults to 1

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// A view of `t` with another shape/strides/offset over the same storage (no checks: for op implementers).
Tensor make_view(const Tensor& t, const Shape& shape, const Shape& strides, int64_t offset);
Shape contiguous_strides(const Shape& shape);

}  // namespace intl
