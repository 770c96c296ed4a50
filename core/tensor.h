// Tensor: a cheap handle to {shared Storage, shape, strides, offset, dtype}. Copying a Tensor
// copies the handle, not the data. Views (reshape of contiguous data, transpose, permute,
// narrow, expand, squeeze/unsqueeze, select) share the storage; contiguous(), clone() and to()
// copy. Math lives in core/ops.h; this class holds metadata and views only. Part of core/.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/shape.h"
#include "core/storage.h"

namespace cw {

class Tensor {
 public:
  // An undefined tensor (no storage); defined() is false. Used for "no gradient".
  Tensor() = default;
  Tensor(std::shared_ptr<Storage> storage, Shape shape, Strides strides, int64_t offset, DType dtype);

  // Uninitialized contiguous tensor.
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Strides& strides() const { return strides_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t d) const;
  int64_t stride(int64_t d) const;
  int64_t numel() const { return numel_of(shape_); }
  int64_t offset() const { return offset_; }
  DType dtype() const { return dtype_; }
  Device device() const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  bool is_contiguous() const;
  // True when both handles view the same storage (not necessarily the same elements).
  bool shares_storage(const Tensor& other) const { return storage_ == other.storage_; }

  // Typed pointer to the first element (storage + offset); throws DTypeError on a wrong T.
  template <class T>
  T* data() const {
    CW_CHECK(DTypeOf<T>::value == dtype_, DTypeError, "data<", dtype_name(DTypeOf<T>::value),
             ">: tensor has dtype ", dtype_name(dtype_));
    return static_cast<T*>(raw_data());
  }
  void* raw_data() const;

  // ---- views: share storage, O(ndim) ----
  // view: new shape over the same elements; needs strides compatible with it (like PyTorch);
  // one size may be -1 and is inferred.
  Tensor view(const Shape& shape) const;
  // reshape: a view when possible, otherwise a contiguous copy.
  Tensor reshape(const Shape& shape) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const;  // transpose of a 2-d tensor
  Tensor permute(const std::vector<int64_t>& dims) const;
  // narrow(dim, start, length): elements [start, start + length) along dim.
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  // slice(dim, start, end, step): Python-style, negative start/end allowed, step >= 1.
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  // select(dim, i): removes dim, keeping index i.
  Tensor select(int64_t dim, int64_t index) const;
  // expand: size-1 dims (and new leading dims) repeat with stride 0; -1 keeps a size.
  Tensor expand(const Shape& shape) const;
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;

  // ---- copies ----
  Tensor contiguous() const;  // self if already contiguous
  Tensor clone() const;       // always a fresh contiguous copy
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;

  // ---- in place ----
  Tensor& copy_(const Tensor& src);  // src broadcast to this shape, dtype converted
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }

  // ---- element access (host side, for tests and printing) ----
  double item() const;  // the value of a one-element tensor
  template <class T>
  std::vector<T> to_vector() const;  // all elements in row-major order, converted to T
  std::string str() const;           // readable, PyTorch-like; large tensors are summarized

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  Strides strides_;
  int64_t offset_ = 0;
  DType dtype_ = DType::F32;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// A one-line description used in error messages: "f32 (2, 3) on cpu".
std::string describe(const Tensor& t);

}  // namespace cw
