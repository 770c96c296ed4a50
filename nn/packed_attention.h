// Multi-head self-attention with PyTorch's nn.MultiheadAttention parameter layout: one packed
// input projection in_proj_weight (3E, E) / in_proj_bias (3E) holding the query, key and value
// rows in that order, then out_proj. torchvision's ViT (and most PyTorch checkpoints) store
// attention this way, so this module loads them by name. Part of nn/.
#pragma once

#include "nn/basic_layers.h"

namespace cw::nn {

class PackedMultiHeadAttention : public Module {
 public:
  // Initialized as nn.MultiheadAttention._reset_parameters: Xavier-uniform in_proj_weight,
  // zero in_proj_bias and out_proj.bias, out_proj.weight as a default nn.Linear.
  PackedMultiHeadAttention(int64_t embed_dim, int64_t num_heads, double dropout = 0.0,
                           DType dtype = DType::F32);
  // x (B, T, E) attends to itself; key_padding_mask (B, T) nonzero at padding, or undefined.
  // dropout applies to the attention probabilities in training mode (as PyTorch's). -> (B, T, E)
  Variable forward(const Variable& x, const Tensor& key_padding_mask = Tensor()) const;

  int64_t embed_dim, num_heads;
  double dropout;
  Variable in_proj_weight, in_proj_bias;  // (3E, E), (3E)
  std::shared_ptr<Linear> out_proj;
};

}  // namespace cw::nn
