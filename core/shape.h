// Shapes and strides: small vectors of int64 with the helpers every op needs (element count,
// row-major strides, NumPy broadcasting, negative-dim wrapping, printing). Part of core/.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <vector>

namespace cw {

// Sizes per dimension, outermost first (PyTorch/NumPy order). Strides are in elements.
using Shape = std::vector<int64_t>;
using Strides = std::vector<int64_t>;

// Most elements a tensor may have: 2^60, so that its byte count (elements times at most 8 bytes)
// fits in an int64 and no size computed from a shape can wrap around.
inline constexpr int64_t kMaxNumel = int64_t{1} << 60;

// Product of the sizes; 1 for a 0-d (scalar) shape. Throws ShapeError naming the shape when a
// size is negative or the product exceeds kMaxNumel (a wrapped count would size a buffer too
// small for the writes that follow).
int64_t numel_of(const Shape& shape);

// Row-major strides of a contiguous tensor of this shape; the same checks as numel_of.
Strides contiguous_strides(const Shape& shape);

// "(2, 3)" / "()" / "(5,)", as PyTorch prints torch.Size.
std::string shape_str(const Shape& shape);

// Wraps a possibly negative dim into [0, ndim) or throws IndexError naming the op.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

// NumPy broadcasting of two shapes (align right, sizes equal or 1); throws ShapeError naming
// the op and both shapes when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Normalizes a list of dims for a reduction: wraps negatives, rejects duplicates, and an empty
// list means "all dims". Returns a sorted list.
std::vector<int64_t> normalize_dims(const std::vector<int64_t>& dims, int64_t ndim, const char* op);

}  // namespace cw
