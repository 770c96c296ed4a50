// Reductions over any set of dims: sum, mean, amax, amin, var, argmax, and sum_to (the
// gradient of broadcasting). Every reduction is lowered to one backend call on a contiguous
// tensor read as (outer, r, inner).
#include <algorithm>

#include "core/ops.h"

namespace cw::ops {
namespace {

// Shape of the result: reduced dims dropped, or kept as 1.
Shape reduced_shape(const Shape& in, const std::vector<int64_t>& dims, bool keepdim) {
  Shape out;
  for (int64_t d = 0; d < static_cast<int64_t>(in.size()); ++d) {
    const bool reduced = std::find(dims.begin(), dims.end(), d) != dims.end();
    if (!reduced)
      out.push_back(in[d]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}

// Runs `op` over sorted dims. When the dims are one consecutive block of a contiguous tensor it
// reads in place as (outer, r, inner); otherwise reduced dims are moved last first (one copy).
Tensor reduce_dims(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim,
                   const char* name) {
  CW_CHECK(x.defined(), ValueError, name, ": undefined tensor");
  const Shape out_shape = reduced_shape(x.shape(), dims, keepdim);
  const DType out_dtype = op == ReduceOp::ArgMax ? DType::I64 : x.dtype();
  int64_t r = 1;
  for (int64_t d : dims) r *= x.shape()[d];
  if ((op == ReduceOp::Max || op == ReduceOp::Min || op == ReduceOp::ArgMax))
    CW_CHECK(r > 0, ValueError, name, ": cannot reduce over an empty dim of ", describe(x));
  Tensor src = x;
  int64_t outer = 1, inner = 1;
  const bool block = dims.empty() || dims.back() - dims.front() + 1 == static_cast<int64_t>(dims.size());
  if (block && x.is_contiguous()) {
    if (!dims.empty()) {
      for (int64_t d = 0; d < dims.front(); ++d) outer *= x.shape()[d];
      for (int64_t d = dims.back() + 1; d < x.dim(); ++d) inner *= x.shape()[d];
    }
  } else {
    std::vector<int64_t> perm;
    for (int64_t d = 0; d < x.dim(); ++d)
      if (std::find(dims.begin(), dims.end(), d) == dims.end()) perm.push_back(d);
    for (int64_t d : dims) perm.push_back(d);
    src = x.permute(perm).contiguous();
    outer = x.numel() / std::max<int64_t>(r, 1);
    if (r == 0) outer = numel_of(out_shape);
  }
  Tensor out = Tensor::empty(out_shape, out_dtype, x.device());
  backend_for(x.device(), name).reduce(op, src, out, outer, r, inner);
  return out;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce_dims(ReduceOp::Sum, x, normalize_dims(dims, x.dim(), "sum"), keepdim, "sum");
}
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  check_floating(x, "mean");
  return reduce_dims(ReduceOp::Mean, x, normalize_dims(dims, x.dim(), "mean"), keepdim, "mean");
}
Tensor amax(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce_dims(ReduceOp::Max, x, normalize_dims(dims, x.dim(), "amax"), keepdim, "amax");
}
Tensor amin(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce_dims(ReduceOp::Min, x, normalize_dims(dims, x.dim(), "amin"), keepdim, "amin");
}
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  const int64_t d = wrap_dim(dim, x.dim(), "argmax");
  return reduce_dims(ReduceOp::ArgMax, x, x.dim() == 0 ? std::vector<int64_t>{} : std::vector<int64_t>{d},
                     keepdim, "argmax");
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  check_floating(x, "var");
  const auto nd = normalize_dims(dims, x.dim(), "var");
  int64_t n = 1;
  for (int64_t d : nd) n *= x.shape()[d];
  CW_CHECK(n - correction > 0, ValueError, "var: ", n, " elements with correction ", correction,
           " leave no degrees of freedom");
  // Two passes (mean, then squared deviations) rather than E[x^2] - E[x]^2, which cancels
  // catastrophically when the mean is large relative to the spread.
  const Tensor centered = sub(x, mean(x, nd, true));
  return div(sum(mul(centered, centered), nd, keepdim), static_cast<double>(n - correction));
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  CW_CHECK(broadcast_shapes(shape, x.shape(), "sum_to") == x.shape(), ShapeError,
           "sum_to: ", shape_str(x.shape()), " is not a broadcast of ", shape_str(shape));
  const int64_t lead = x.dim() - static_cast<int64_t>(shape.size());
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d < lead || (shape[d - lead] == 1 && x.shape()[d] != 1)) dims.push_back(d);
  if (dims.empty()) return x.reshape(shape);
  return reduce_dims(ReduceOp::Sum, x, dims, true, "sum_to").reshape(shape);
}

}  // namespace cw::ops
