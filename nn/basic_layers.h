// The basic layers: Linear, Embedding, LayerNorm, Dropout. Parameter names and shapes follow
// PyTorch (weight (out, in) for Linear), so their state dicts interchange. Part of nn/.
#pragma once

#include <optional>

#include "nn/module.h"

namespace cw::nn {

// y = x W^T + b over the last dim: (..., in) -> (..., out).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, DType dtype = DType::F32);
  Variable forward(const Variable& x) const;
  Variable weight, bias;  // (out, in), (out) or undefined
};

// Rows of a (num, dim) table picked by i64 ids: ids (...) -> (..., dim).
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t dim, DType dtype = DType::F32);
  Variable forward(const Tensor& ids) const;
  Variable weight;
};

// Normalizes over the trailing `normalized_shape` dims, with learnable scale and shift.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool affine = true, DType dtype = DType::F32);
  Variable forward(const Variable& x) const;
  Variable weight, bias;
  double eps;
  int64_t normalized_ndim;
};

// Inverted dropout in training mode, the identity in eval mode.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.1);
  Variable forward(const Variable& x) const;
  double p;
};

}  // namespace cw::nn
