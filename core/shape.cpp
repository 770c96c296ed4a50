// Shape helpers (see shape.h).
#include "core/shape.h"

#include <algorithm>
#include <sstream>

#include "core/error.h"

namespace cw {

namespace {

// acc * size, or ShapeError naming the shape when a size is negative or the product passes
// kMaxNumel. Checked before multiplying, so the product itself never overflows.
int64_t checked_mul(int64_t acc, int64_t size, const Shape& shape) {
  CW_CHECK(size >= 0, ShapeError, "shape ", shape_str(shape), " has a negative size");
  CW_CHECK(
      size == 0 || acc <= kMaxNumel / size, ShapeError, "shape ", shape_str(shape),
      " has more than 2^60 elements (the most a tensor may hold, so that its byte count fits in 64 bits)");
  return acc * size;
}

}  // namespace

int64_t numel_of(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n = checked_mul(n, s, shape);
  return n;
}

Strides contiguous_strides(const Shape& shape) {
  Strides st(shape.size());
  int64_t acc = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    st[i] = acc;
    acc = checked_mul(acc, std::max<int64_t>(shape[i], 1), shape);
  }
  return st;
}

std::string shape_str(const Shape& shape) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  if (shape.size() == 1) os << ",";
  os << ")";
  return os.str();
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  // A 0-d tensor accepts dim 0 and -1, as in PyTorch.
  const int64_t n = std::max<int64_t>(ndim, 1);
  CW_CHECK(dim >= -n && dim < n, IndexError, op, ": dim ", dim, " is out of range for a tensor with ", ndim,
           " dims");
  return dim < 0 ? dim + n : dim;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    CW_CHECK(da == db || da == 1 || db == 1, ShapeError, op, ": shapes ", shape_str(a), " and ", shape_str(b),
             " cannot be broadcast (dim ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op) {
  std::vector<int64_t> out;
  if (dims.empty()) {
    for (int64_t d = 0; d < ndim; ++d) out.push_back(d);
    return out;
  }
  for (int64_t d : dims) out.push_back(wrap_dim(d, ndim, op));
  std::sort(out.begin(), out.end());
  CW_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), IndexError, op,
           ": a dim appears twice in the reduction dims");
  if (ndim == 0) out.clear();  // reducing a scalar over dim 0 is the identity
  return out;
}

}  // namespace cw
