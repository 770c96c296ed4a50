// Linear, Embedding, LayerNorm, Dropout (see basic_layers.h).
#include "nn/basic_layers.h"

#include "autograd/functions.h"
#include "nn/init.h"

namespace cw::nn {

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias, DType dtype) {
  CW_CHECK(in_features > 0 && out_features > 0, ValueError, "Linear: sizes must be positive, got ",
           in_features, " -> ", out_features);
  weight = register_parameter("weight", init::kaiming_uniform_linear({out_features, in_features}, dtype));
  if (with_bias) bias = register_parameter("bias", init::bias_uniform(out_features, in_features, dtype));
}

Variable Linear::forward(const Variable& x) const {
  CW_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), ShapeError, "Linear: input ", shape_str(x.shape()),
           " does not end in in_features = ", weight.size(1));
  // x @ W^T reads W transposed in place (no copy); the GEMM adds onto the bias (ops::linear).
  return ag::linear(x, weight, bias);
}

Embedding::Embedding(int64_t num, int64_t dim, DType dtype) {
  CW_CHECK(num > 0 && dim > 0, ValueError, "Embedding: sizes must be positive, got (", num, ", ", dim, ")");
  weight = register_parameter("weight", init::normal({num, dim}, 1.0, dtype));  // as nn.Embedding
}

Variable Embedding::forward(const Tensor& ids) const { return ag::embedding(weight, ids); }

LayerNorm::LayerNorm(Shape normalized_shape, double eps_, bool affine, DType dtype)
    : eps(eps_), normalized_ndim(static_cast<int64_t>(normalized_shape.size())) {
  CW_CHECK(!normalized_shape.empty(), ValueError, "LayerNorm: normalized_shape is empty");
  if (affine) {
    weight = register_parameter("weight", ops::ones(normalized_shape, dtype));
    bias = register_parameter("bias", ops::zeros(normalized_shape, dtype));
  }
}

Variable LayerNorm::forward(const Variable& x) const {
  return ag::layer_norm(x, normalized_ndim, weight, bias, eps);
}

Dropout::Dropout(double p_) : p(p_) {
  CW_CHECK(p >= 0 && p < 1, ValueError, "Dropout: p must be in [0, 1), got ", p);
}

Variable Dropout::forward(const Variable& x) const { return ag::dropout(x, p, is_training()); }

}  // namespace cw::nn
