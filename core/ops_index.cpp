// Indexing (index_select, index_add, gather, scatter_add, embedding) and joining/splitting
// (concat, stack, split). Every index is bounds-checked here, once, before any kernel runs.
#include "core/ops.h"

namespace cw::ops {
namespace {

void check_index(const Tensor& index, int64_t size, const char* op, const char* what) {
  CW_CHECK(index.defined(), ValueError, op, ": undefined index tensor");
  CW_CHECK(index.dtype() == DType::I64, DTypeError, op, ": index must be i64, got ", describe(index));
  if (index.numel() == 0) return;
  const double lo = amin(index).to(Device::cpu()).item();
  const double hi = amax(index).to(Device::cpu()).item();
  CW_CHECK(lo >= 0 && hi < static_cast<double>(size), IndexError, op, ": index out of range for ", what,
           " of size ", size, " (indices span [", static_cast<int64_t>(lo), ", ", static_cast<int64_t>(hi),
           "])");
}

}  // namespace

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  CW_CHECK(x.defined(), ValueError, "index_select: undefined input");
  dim = wrap_dim(dim, x.dim(), "index_select");
  CW_CHECK(index.defined() && index.dim() == 1, ShapeError, "index_select: index must be 1-d, got ",
           describe(index));
  check_same_device(x, index, "index_select");
  check_index(index, x.dim() == 0 ? 1 : x.size(dim), "index_select", "dim");
  Shape shape = x.shape();
  if (x.dim() > 0) shape[dim] = index.size(0);
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  backend_for(x.device(), "index_select").index_select(x.contiguous(), dim, index.contiguous(), out);
  return out;
}

Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  dim = wrap_dim(dim, x.dim(), "index_add");
  CW_CHECK(index.defined() && index.dim() == 1, ShapeError, "index_add: index must be 1-d, got ",
           describe(index));
  Shape want = x.shape();
  want[dim] = index.size(0);
  CW_CHECK(src.shape() == want, ShapeError, "index_add: source ", shape_str(src.shape()), " should be ",
           shape_str(want), " for input ", shape_str(x.shape()), " and ", index.size(0), " indices");
  check_same_dtype(x, src, "index_add");
  check_index(index, x.size(dim), "index_add", "dim");
  Tensor out = x.clone();
  backend_for(x.device(), "index_add").index_add(out, dim, index.contiguous(), src.contiguous());
  return out;
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  dim = wrap_dim(dim, x.dim(), "gather");
  CW_CHECK(index.defined() && index.dim() == x.dim(), ShapeError, "gather: index ", describe(index),
           " must have as many dims as the input ", shape_str(x.shape()));
  for (int64_t d = 0; d < x.dim(); ++d)
    CW_CHECK(d == dim || index.size(d) <= x.size(d), ShapeError, "gather: index ", shape_str(index.shape()),
             " is larger than the input ", shape_str(x.shape()), " in dim ", d);
  check_index(index, x.size(dim), "gather", "dim");
  Tensor out = Tensor::empty(index.shape(), x.dtype(), x.device());
  backend_for(x.device(), "gather").gather(x.contiguous(), dim, index.contiguous(), out);
  return out;
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  dim = wrap_dim(dim, x.dim(), "scatter_add");
  CW_CHECK(index.defined() && index.shape() == src.shape() && index.dim() == x.dim(), ShapeError,
           "scatter_add: index ", describe(index), " and source ", describe(src),
           " must have the same shape and as many dims as the input ", shape_str(x.shape()));
  for (int64_t d = 0; d < x.dim(); ++d)
    CW_CHECK(d == dim || index.size(d) <= x.size(d), ShapeError, "scatter_add: index ",
             shape_str(index.shape()), " is larger than the input ", shape_str(x.shape()), " in dim ", d);
  check_same_dtype(x, src, "scatter_add");
  check_index(index, x.size(dim), "scatter_add", "dim");
  Tensor out = x.clone();
  backend_for(x.device(), "scatter_add").scatter_add(out, dim, index.contiguous(), src.contiguous());
  return out;
}

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  CW_CHECK(weight.defined() && weight.dim() == 2, ShapeError, "embedding: weight must be (V, D), got ",
           describe(weight));
  CW_CHECK(ids.defined() && ids.dtype() == DType::I64, DTypeError, "embedding: ids must be i64, got ",
           describe(ids));
  check_index(ids, weight.size(0), "embedding", "vocabulary");
  Shape shape = ids.shape();
  shape.push_back(weight.size(1));
  return index_select(weight, 0, ids.reshape({-1})).view(shape);
}

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  CW_CHECK(!xs.empty(), ValueError, "concat: no tensors given");
  const Tensor& first = xs.front();
  CW_CHECK(first.defined() && first.dim() > 0, ShapeError, "concat: tensors must be at least 1-d");
  dim = wrap_dim(dim, first.dim(), "concat");
  Shape shape = first.shape();
  shape[dim] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    CW_CHECK(x.defined() && x.dim() == first.dim(), ShapeError, "concat: tensor ", i, " ", describe(x),
             " has a different number of dims than tensor 0 ", describe(first));
    for (int64_t d = 0; d < x.dim(); ++d)
      CW_CHECK(d == dim || x.size(d) == first.size(d), ShapeError, "concat: tensor ", i, " ",
               shape_str(x.shape()), " differs from tensor 0 ", shape_str(first.shape()), " outside dim ",
               dim);
    check_same_dtype(first, x, "concat");
    check_same_device(first, x, "concat");
    shape[dim] += x.size(dim);
  }
  Tensor out = Tensor::empty(shape, first.dtype(), first.device());
  int64_t at = 0;
  for (const Tensor& x : xs) {
    Tensor dst = out.narrow(dim, at, x.size(dim));
    backend_for(out.device(), "concat").copy(x, dst);
    at += x.size(dim);
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  CW_CHECK(!xs.empty(), ValueError, "stack: no tensors given");
  dim = wrap_dim(dim, xs.front().dim() + 1, "stack");
  std::vector<Tensor> us;
  for (size_t i = 0; i < xs.size(); ++i) {
    CW_CHECK(xs[i].defined() && xs[i].shape() == xs.front().shape(), ShapeError, "stack: tensor ", i, " ",
             describe(xs[i]), " differs from tensor 0 ", describe(xs.front()));
    us.push_back(xs[i].unsqueeze(dim));
  }
  return concat(us, dim);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  dim = wrap_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    CW_CHECK(s >= 0, ValueError, "split: negative size ", s);
    total += s;
  }
  CW_CHECK(total == x.size(dim), ShapeError, "split: sizes sum to ", total, " but dim ", dim, " of ",
           shape_str(x.shape()), " has ", x.size(dim));
  std::vector<Tensor> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(x.narrow(dim, at, s));
    at += s;
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t dim) {
  CW_CHECK(size > 0, ValueError, "split: size must be positive, got ", size);
  dim = wrap_dim(dim, x.dim(), "split");
  std::vector<int64_t> sizes;
  for (int64_t at = 0; at < x.size(dim); at += size) sizes.push_back(std::min(size, x.size(dim) - at));
  return split(x, sizes, dim);
}

}  // namespace cw::ops
