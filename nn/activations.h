// Activation modules of the Conformer convolution module (Gulati et al. 2020, sec. 2.2): the gated
// linear unit GLU (Dauphin et al. 2017) and Swish/SiLU (Ramachandran et al. 2017), plus ReLU, as
// PyTorch's nn.GLU / nn.SiLU / nn.ReLU. SiLU and ReLU are ag ops; glu is one autograd node of its
// own (activations.cpp). Part of nn/.
#pragma once

#include "autograd/functions.h"
#include "core/error.h"
#include "nn/module.h"

namespace cw::nn {

// glu(x, dim) = a * sigmoid(b), where a and b are the first and second halves of x along dim
// (torch.nn.functional.glu): (..., 2C, ...) -> (..., C, ...).
Variable glu(const Variable& x, int64_t dim = -1);

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
