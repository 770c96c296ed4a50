// Creation ops: constant fills, ranges, copies from host vectors and seeded random draws.
#include <cmath>

#include "core/ops.h"

namespace cw::ops {

Tensor empty(const Shape& shape, DType dtype, Device device) { return Tensor::empty(shape, dtype, device); }

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  backend_for(device, "full").fill(t, value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, t.dtype(), t.device()); }
Tensor scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  CW_CHECK(step != 0, ValueError, "arange: step must be nonzero");
  CW_CHECK((end - start) * step >= 0, ValueError, "arange: range [", start, ", ", end,
           ") cannot be walked with step ", step);
  const auto n = static_cast<int64_t>(std::ceil((end - start) / step));
  Tensor t = Tensor::empty({n}, dtype, device);
  backend_for(device, "arange").arange(t, start, step);
  return t;
}

template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device) {
  CW_CHECK(static_cast<int64_t>(values.size()) == numel_of(shape), ShapeError, "from_vector: ", values.size(),
           " values do not fill shape ", shape_str(shape));
  CW_CHECK(device.is_cpu(), DeviceError, "from_vector: create on cpu, then call .to(", device.str(), ")");
  Tensor t = Tensor::empty(shape, DTypeOf<T>::value, device);
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}
template Tensor from_vector<float>(const std::vector<float>&, const Shape&, Device);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&, Device);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, Device);

Tensor uniform(const Shape& shape, double lo, double hi, DType dtype, Generator& gen, Device device) {
  CW_CHECK(is_floating(dtype), DTypeError, "uniform: dtype must be f32 or f64, got ", dtype_name(dtype));
  CW_CHECK(lo <= hi, ValueError, "uniform: lo ", lo, " > hi ", hi);
  Tensor t = Tensor::empty(shape, dtype, device);
  backend_for(t.device(), "uniform").uniform(t, gen.seed(), gen.reserve(t.numel()), lo, hi);
  return t;
}

Tensor normal(const Shape& shape, double mean, double std, DType dtype, Generator& gen, Device device) {
  CW_CHECK(is_floating(dtype), DTypeError, "normal: dtype must be f32 or f64, got ", dtype_name(dtype));
  CW_CHECK(std >= 0, ValueError, "normal: std must be >= 0, got ", std);
  Tensor t = Tensor::empty(shape, dtype, device);
  backend_for(t.device(), "normal").normal(t, gen.seed(), gen.reserve(t.numel()), mean, std);
  return t;
}

DropoutResult dropout(const Tensor& x, double p, Generator& gen) {
  CW_CHECK(p >= 0 && p < 1, ValueError, "dropout: p must be in [0, 1), got ", p);
  CW_CHECK(x.defined(), ValueError, "dropout: undefined tensor");
  check_floating(x, "dropout");
  const int64_t groups = (x.numel() + kDropoutGroup - 1) / kDropoutGroup;
  // The kept scale 1/(1-p) keeps E[y] = x.
  DropoutResult r{Tensor::empty(x.shape(), x.dtype(), x.device()),
                  Tensor::empty({groups}, DType::I64, x.device())};
  const uint64_t offset = gen.reserve(static_cast<uint64_t>(kDropoutBlocks * groups));
  backend_for(x.device(), "dropout").dropout(x.contiguous(), p, gen.seed(), offset, r.y, r.mask);
  return r;
}

Tensor dropout_backward(const Tensor& g, const Tensor& mask, double p) {
  CW_CHECK(p >= 0 && p < 1, ValueError, "dropout_backward: p must be in [0, 1), got ", p);
  check_floating(g, "dropout_backward");
  check_same_device(g, mask, "dropout_backward");
  CW_CHECK(mask.dtype() == DType::I64 && mask.dim() == 1 &&
               mask.numel() == (g.numel() + kDropoutGroup - 1) / kDropoutGroup,
           ShapeError, "dropout_backward: mask ", shape_str(mask.shape()), " ", dtype_name(mask.dtype()),
           " is not the bits of a gradient ", shape_str(g.shape()));
  Tensor gx = Tensor::empty(g.shape(), g.dtype(), g.device());
  backend_for(g.device(), "dropout_backward").dropout_backward(g.contiguous(), mask.contiguous(), p, gx);
  return gx;
}

Tensor dropout_mask(const Shape& shape, double p, DType dtype, Generator& gen, Device device) {
  return dropout(ones(shape, dtype, device), p, gen).y;
}

}  // namespace cw::ops
