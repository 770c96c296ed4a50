// Tensor metadata, views and copies (see tensor.h). Every view is O(ndim) and shares storage.
#include "core/tensor.h"

#include <algorithm>
#include <numeric>

#include "core/backend.h"
#include "core/ops.h"

namespace cw {

Tensor::Tensor(std::shared_ptr<Storage> storage, Shape shape, Strides strides, int64_t offset, DType dtype)
    : storage_(std::move(storage)),
      shape_(std::move(shape)),
      strides_(std::move(strides)),
      offset_(offset),
      dtype_(dtype) {}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t s : shape) CW_CHECK(s >= 0, ShapeError, "empty: negative size in shape ", shape_str(shape));
  const int64_t n = numel_of(shape);
  return Tensor(allocate_storage(static_cast<size_t>(n) * dtype_size(dtype), device), shape,
                contiguous_strides(shape), 0, dtype);
}

Device Tensor::device() const { return storage_ ? storage_->device() : Device::cpu(); }

int64_t Tensor::size(int64_t d) const { return shape_[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides_[wrap_dim(d, dim(), "stride")]; }

void* Tensor::raw_data() const {
  CW_CHECK(defined(), ValueError, "data: the tensor is undefined");
  return static_cast<char*>(storage_->data()) + offset_ * static_cast<int64_t>(dtype_size(dtype_));
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] == 1) continue;  // the stride of a size-1 dim never matters
    if (strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

namespace {

// Resolves one -1 in a requested shape against numel.
Shape infer_shape(const Shape& req, int64_t numel, const char* op, const Shape& from) {
  Shape out = req;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      CW_CHECK(infer < 0, ShapeError, op, ": only one dim may be -1 in ", shape_str(req));
      infer = static_cast<int64_t>(i);
    } else {
      CW_CHECK(out[i] >= 0, ShapeError, op, ": invalid size in ", shape_str(req));
      // Checked like numel_of: a product past kMaxNumel cannot match any real tensor, and must
      // not wrap into one that does.
      CW_CHECK(out[i] == 0 || known <= kMaxNumel / out[i], ShapeError, op, ": ", shape_str(req),
               " has more than 2^60 elements");
      known *= out[i];
    }
  }
  if (infer >= 0) {
    CW_CHECK(known != 0 && numel % known == 0, ShapeError, op, ": cannot view ", shape_str(from), " as ",
             shape_str(req));
    out[infer] = numel / known;
  }
  CW_CHECK(numel_of(out) == numel, ShapeError, op, ": cannot view ", shape_str(from), " (", numel,
           " elements) as ", shape_str(req));
  return out;
}

// Strides for viewing (shape, strides) as new_shape without a copy, or empty if impossible.
// Walks groups of old dims that are contiguous among themselves (as PyTorch's computeStride).
Strides view_strides(const Shape& shape, const Strides& strides, const Shape& new_shape) {
  Strides out(new_shape.size());
  // An empty tensor, or a one-element one (0-d included), views as anything of its size.
  if (numel_of(shape) <= 1) return contiguous_strides(new_shape);
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= shape[d];
    if (d == 0 || (shape[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return {};
      if (d > 0) {
        chunk_base_stride = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return {};
  return out;
}

}  // namespace

Tensor Tensor::view(const Shape& req) const {
  const Shape shape = infer_shape(req, numel(), "view", shape_);
  if (shape.empty()) return Tensor(storage_, shape, {}, offset_, dtype_);
  Strides st = view_strides(shape_, strides_, shape);
  CW_CHECK(!st.empty(), ShapeError, "view: cannot view ", shape_str(shape_), " with strides ",
           shape_str(strides_), " as ", shape_str(shape), " without a copy (use reshape)");
  return Tensor(storage_, shape, st, offset_, dtype_);
}

Tensor Tensor::reshape(const Shape& req) const {
  const Shape shape = infer_shape(req, numel(), "reshape", shape_);
  if (shape.empty()) return contiguous().view(shape);
  Strides st = view_strides(shape_, strides_, shape);
  if (!st.empty()) return Tensor(storage_, shape, st, offset_, dtype_);
  return contiguous().view(shape);
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  d0 = wrap_dim(d0, dim(), "transpose");
  d1 = wrap_dim(d1, dim(), "transpose");
  if (dim() == 0) return *this;
  Shape sh = shape_;
  Strides st = strides_;
  std::swap(sh[d0], sh[d1]);
  std::swap(st[d0], st[d1]);
  return Tensor(storage_, sh, st, offset_, dtype_);
}

Tensor Tensor::t() const {
  CW_CHECK(dim() == 2, ShapeError, "t: expects a 2-d tensor, got ", shape_str(shape_));
  return transpose(0, 1);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  CW_CHECK(static_cast<int64_t>(dims.size()) == dim(), ShapeError, "permute: got ", dims.size(),
           " dims for a tensor of shape ", shape_str(shape_));
  Shape sh(dims.size());
  Strides st(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = wrap_dim(dims[i], dim(), "permute");
    CW_CHECK(!seen[d], IndexError, "permute: dim ", d, " appears twice");
    seen[d] = true;
    sh[i] = shape_[d];
    st[i] = strides_[d];
  }
  return Tensor(storage_, sh, st, offset_, dtype_);
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d, dim(), "narrow");
  CW_CHECK(dim() > 0, ShapeError, "narrow: cannot narrow a 0-d tensor");
  CW_CHECK(start >= 0 && length >= 0 && start + length <= shape_[d], IndexError, "narrow: range [", start,
           ", ", start + length, ") is out of bounds for dim ", d, " of size ", shape_[d]);
  Shape sh = shape_;
  sh[d] = length;
  return Tensor(storage_, sh, strides_, offset_ + start * strides_[d], dtype_);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d, dim(), "slice");
  CW_CHECK(step >= 1, ValueError, "slice: step must be >= 1, got ", step);
  const int64_t n = shape_[d];
  auto clampi = [n](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + n : v, 0, n); };
  start = clampi(start);
  end = std::max(clampi(end), start);
  Shape sh = shape_;
  Strides st = strides_;
  sh[d] = (end - start + step - 1) / step;
  st[d] = strides_[d] * step;
  return Tensor(storage_, sh, st, offset_ + start * strides_[d], dtype_);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d, dim(), "select");
  CW_CHECK(index >= -shape_[d] && index < shape_[d], IndexError, "select: index ", index,
           " is out of bounds for dim ", d, " of size ", shape_[d]);
  if (index < 0) index += shape_[d];
  Shape sh = shape_;
  Strides st = strides_;
  sh.erase(sh.begin() + d);
  st.erase(st.begin() + d);
  return Tensor(storage_, sh, st, offset_ + index * strides_[d], dtype_);
}

Tensor Tensor::expand(const Shape& req) const {
  CW_CHECK(req.size() >= shape_.size(), ShapeError, "expand: cannot expand ", shape_str(shape_),
           " to fewer dims ", shape_str(req));
  const size_t lead = req.size() - shape_.size();
  Shape sh(req.size());
  Strides st(req.size());
  for (size_t i = 0; i < req.size(); ++i) {
    if (i < lead) {
      CW_CHECK(req[i] >= 0, ShapeError, "expand: invalid size in ", shape_str(req));
      sh[i] = req[i];
      st[i] = 0;
      continue;
    }
    const int64_t cur = shape_[i - lead];
    const int64_t want = req[i] == -1 ? cur : req[i];
    CW_CHECK(want == cur || cur == 1, ShapeError, "expand: cannot expand ", shape_str(shape_), " to ",
             shape_str(req), " (dim ", i, ": ", cur, " -> ", want, ")");
    sh[i] = want;
    st[i] = (want == cur) ? strides_[i - lead] : 0;
  }
  return Tensor(storage_, sh, st, offset_, dtype_);
}

Tensor Tensor::squeeze() const {
  Shape sh;
  Strides st;
  for (size_t i = 0; i < shape_.size(); ++i)
    if (shape_[i] != 1) {
      sh.push_back(shape_[i]);
      st.push_back(strides_[i]);
    }
  return Tensor(storage_, sh, st, offset_, dtype_);
}

Tensor Tensor::squeeze(int64_t d) const {
  if (dim() == 0) return *this;
  d = wrap_dim(d, dim(), "squeeze");
  if (shape_[d] != 1) return *this;  // as PyTorch: squeezing a non-1 dim is a no-op
  Shape sh = shape_;
  Strides st = strides_;
  sh.erase(sh.begin() + d);
  st.erase(st.begin() + d);
  return Tensor(storage_, sh, st, offset_, dtype_);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape sh = shape_;
  Strides st = strides_;
  const int64_t s = d < dim() ? strides_[d] * shape_[d] : 1;
  sh.insert(sh.begin() + d, 1);
  st.insert(st.begin() + d, s);
  return Tensor(storage_, sh, st, offset_, dtype_);
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  start = wrap_dim(start, dim(), "flatten");
  end = wrap_dim(end, dim(), "flatten");
  CW_CHECK(start <= end, ValueError, "flatten: start_dim ", start, " is after end_dim ", end);
  Shape sh(shape_.begin(), shape_.begin() + start);
  int64_t n = 1;
  for (int64_t i = start; i <= end; ++i) n *= shape_[i];
  sh.push_back(n);
  sh.insert(sh.end(), shape_.begin() + end + 1, shape_.end());
  return reshape(sh);
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = Tensor::empty(shape_, dtype_, device());
  backend_for(device(), "clone").copy(*this, out);
  return out;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor out = Tensor::empty(shape_, dtype, device());
  backend_for(device(), "to").copy(*this, out);
  return out;
}

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  // Cross-device copies belong to the device backend (it knows its copy engine); they move
  // contiguous bytes, so a strided source is first made contiguous on its own device.
  CW_CHECK(defined(), ValueError, "to: undefined tensor");
  const Tensor src = contiguous();
  Tensor out = Tensor::empty(shape_, dtype_, device);
  cross_device_copy(src, out, "to");
  return out;
}

Tensor& Tensor::copy_(const Tensor& src) {
  CW_CHECK(defined() && src.defined(), ValueError, "copy_: undefined tensor");
  ops::check_same_device(*this, src, "copy_");
  backend_for(device(), "copy_").copy(src.expand(shape_), *this);
  return *this;
}

Tensor& Tensor::fill_(double value) {
  CW_CHECK(defined(), ValueError, "fill_: undefined tensor");
  backend_for(device(), "fill_").fill(*this, value);
  return *this;
}

double Tensor::item() const {
  CW_CHECK(numel() == 1, ValueError, "item: expects one element, tensor has shape ", shape_str(shape_));
  CW_CHECK(device().is_cpu(), DeviceError, "item: tensor is on ", device().str(), "; copy it to cpu");
  return dispatch_all(dtype_, "item", [&]<class T>() { return static_cast<double>(*data<T>()); });
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  CW_CHECK(device().is_cpu(), DeviceError, "to_vector: tensor is on ", device().str());
  const Tensor c = contiguous();
  std::vector<T> out(static_cast<size_t>(numel()));
  dispatch_all(dtype_, "to_vector", [&]<class S>() {
    const S* p = c.data<S>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(p[i]);
  });
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

std::string describe(const Tensor& t) {
  if (!t.defined()) return "undefined tensor";
  return detail::cat(dtype_name(t.dtype()), " ", shape_str(t.shape()), " on ", t.device().str());
}

}  // namespace cw
