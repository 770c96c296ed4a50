// Activation modules of the Conformer convolution module (Gulati et al. 2020, sec. 2.2): the gated
// linear unit GLU (Dauphin et al. 2017) and Swish/SiLU (Ramachandran et al. 2017), plus ReLU, as
// PyTorch's nn.GLU / nn.SiLU / nn.ReLU. Composed from differentiable ag ops, whose backward rules
// give theirs. Part of nn/.
#pragma once

#include "autograd/functions.h"
#include "core/error.h"
#include "nn/module.h"

namespace cw::nn {

// glu(x, dim) = a * sigmoid(b), where a and b are the first and second halves of x along dim
// (torch.nn.functional.glu): (..., 2C, ...) -> (..., C, ...).
inline Variable glu(const Variable& x, int64_t dim = -1) {
  const int64_t d = dim < 0 ? dim + x.dim() : dim;
  CW_CHECK(d >= 0 && d < x.dim() && x.size(d) % 2 == 0, ShapeError, "glu: dim ", dim, " of input ",
           shape_str(x.shape()), " must exist and have an even size");
  const std::vector<Variable> ab = ag::split(x, x.size(d) / 2, d);
  return ab[0] * ag::sigmoid(ab[1]);
}

class GLU : public Module {
 public:
  explicit GLU(int64_t dim_ = -1) : dim(dim_) {}
  Variable forward(const Variable& x) const { return glu(x, dim); }
  int64_t dim;
};

// Swish with beta = 1, x * sigmoid(x), which PyTorch calls SiLU.
class SiLU : public Module {
 public:
  Variable forward(const Variable& x) const { return ag::silu(x); }
};
using Swish = SiLU;

class ReLU : public Module {
 public:
  Variable forward(const Variable& x) const { return ag::relu(x); }
};

}  // namespace cw::nn
