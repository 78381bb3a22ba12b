// Tensor creation, views, copies and host reads. Autograd lives in engine/autograd.cpp.
#include "engine/tensor.h"

#include <atomic>
#include <cstring>
#include <sstream>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/bfloat16.h"
#include "engine/error.h"

namespace intl {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i32: return 4;
    case DType::i64: return 8;
    case DType::u8: return 1;
    case DType::bf16: return 2;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
    case DType::u8: return "uint8";
    case DType::bf16: return "bfloat16";
  }
  return "?";
}

const char* device_name(Device device) { return device == Device::cpu ? "cpu" : "cuda"; }

std::string shape_str(const Shape& shape) {
  std::ostringstream s;
  s << "(";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << (shape.size() == 1 ? ",)" : ")");
  return s.str();
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

Storage::Storage(size_t bytes_, Device device_) : bytes(bytes_), device(device_) {
  data = backend(device).alloc(bytes);
}

Storage::~Storage() { backend(device).free(data, bytes); }

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t s : shape) INTL_CHECK(s >= 0, "tensor shape " + shape_str(shape) + " has a negative extent");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(size_t(shape_numel(shape)) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  impl->device = device;
  return Tensor(std::move(impl));
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  backend(device).fill(t, value);
  return t;
}
Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor Tensor::scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape, DType dtype) {
  INTL_CHECK(int64_t(values.size()) == shape_numel(shape),
             "from_vector: " + std::to_string(values.size()) + " values for shape " + shape_str(shape));
  Tensor t = empty(shape, dtype);
  for (size_t i = 0; i < values.size(); ++i) {
    switch (dtype) {
      case DType::f32: t.data<float>()[i] = float(values[i]); break;
      case DType::f64: t.data<double>()[i] = values[i]; break;
      case DType::i32: t.data<int32_t>()[i] = int32_t(values[i]); break;
      case DType::i64: t.data<int64_t>()[i] = int64_t(values[i]); break;
      case DType::u8: t.data<uint8_t>()[i] = uint8_t(values[i]); break;
      case DType::bf16: t.data<bfloat16>()[i] = bfloat16(values[i]); break;
    }
  }
  return t;
}

Tensor Tensor::from_floats(const float* values, const Shape& shape) {
  Tensor t = empty(shape, DType::f32);
  std::memcpy(t.data<float>(), values, size_t(t.numel()) * sizeof(float));
  return t;
}

Tensor Tensor::randn(const Shape& shape, uint64_t seed, uint64_t stream, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  backend(device).random(t, false, 0.0, 1.0, seed, stream);
  return t;
}

Tensor Tensor::rand(const Shape& shape, double lo, double hi, uint64_t seed, uint64_t stream, DType dtype,
                    Device device) {
  Tensor t = empty(shape, dtype, device);
  backend(device).random(t, true, lo, hi, seed, stream);
  return t;
}

int64_t Tensor::size(int64_t axis) const {
  const int64_t d = dim(), a = axis < 0 ? axis + d : axis;
  INTL_CHECK(a >= 0 && a < d, "axis " + std::to_string(axis) + " out of range for shape " + shape_str(shape()));
  return impl_->shape[size_t(a)];
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = impl_->shape.size(); i-- > 0;) {
    if (impl_->shape[i] != 1 && impl_->strides[i] != expected) return false;
    expected *= impl_->shape[i];
  }
  return true;
}

namespace {
template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::i64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::u8; }
template <> constexpr DType dtype_of<bfloat16>() { return DType::bf16; }
}  // namespace

template <class T> T* Tensor::data() const {
  INTL_CHECK(impl_->dtype == dtype_of<T>(), std::string("tensor holds ") + dtype_name(impl_->dtype) + ", read as " +
                                                dtype_name(dtype_of<T>()));
  return static_cast<T*>(impl_->storage->data) + impl_->offset;
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template int32_t* Tensor::data<int32_t>() const;
template int64_t* Tensor::data<int64_t>() const;
template uint8_t* Tensor::data<uint8_t>() const;
template bfloat16* Tensor::data<bfloat16>() const;

void* Tensor::raw_data() const {
  return static_cast<char*>(impl_->storage->data) + impl_->offset * int64_t(dtype_size(impl_->dtype));
}

Tensor make_view(const Tensor& t, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = t.impl()->storage;
  impl->offset = offset;
  impl->shape = shape;
  impl->strides = strides;
  impl->dtype = t.dtype();
  impl->device = t.device();
  return Tensor(std::move(impl));
}

Tensor Tensor::detach() const { return make_view(*this, shape(), strides(), impl_->offset); }

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor src = is_contiguous() ? *this : detach().contiguous();
  Tensor dst = empty(shape(), dtype(), device);
  // The device that is not the CPU does the transfer.
  backend(device == Device::cpu ? src.device() : device).copy(src, dst);
  return dst;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == this->dtype()) return *this;
  Tensor dst = empty(shape(), dtype, device());
  backend(device()).copy(*this, dst);
  return dst;
}

void Tensor::bump_version() const {
  static std::atomic<uint64_t> counter{0};
  impl_->version = counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

void Tensor::fill_(double value) {
  INTL_CHECK(is_contiguous(), "fill_ needs a contiguous tensor");
  backend(device()).fill(*this, value);
  bump_version();
}

void Tensor::copy_(const Tensor& src) {
  INTL_CHECK(src.shape() == shape(), "copy_: shape " + shape_str(src.shape()) + " into " + shape_str(shape()));
  INTL_CHECK(is_contiguous(), "copy_ needs a contiguous destination");
  Tensor s = src.device() == device() ? src : src.to(device());
  backend(device()).copy(s, *this);
  bump_version();
}

double Tensor::item() const {
  INTL_CHECK(numel() == 1, "item() of a tensor with shape " + shape_str(shape()));
  return to_vector()[0];
}

std::vector<double> Tensor::to_vector() const {
  Tensor t = device() == Device::cpu ? *this : to(Device::cpu);
  Tensor c = Tensor::empty(t.shape(), DType::f64);
  cpu_backend().copy(t, c);
  const double* p = c.data<double>();
  return std::vector<double>(p, p + c.numel());
}

std::vector<float> Tensor::to_floats() const {
  Tensor t = device() == Device::cpu ? *this : to(Device::cpu);
  Tensor c = Tensor::empty(t.shape(), DType::f32);
  cpu_backend().copy(t, c);
  const float* p = c.data<float>();
  return std::vector<float>(p, p + c.numel());
}

Tensor& Tensor::requires_grad_(bool value) {
  INTL_CHECK(!value || is_floating(dtype()), std::string("only floating tensors can require grad, not ") +
                                              dtype_name(dtype()));
  impl_->requires_grad = value;
  return *this;
}

Tensor Tensor::grad() const { return impl_->grad ? Tensor(impl_->grad) : Tensor(); }
void Tensor::zero_grad() const { impl_->grad.reset(); }

}  // namespace intl
