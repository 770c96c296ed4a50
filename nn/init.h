// Parameter initializers with PyTorch's defaults, so a freshly built layer starts from the same
// distribution as its PyTorch counterpart (not the same numbers: our generator is Philox).
// Part of nn/.
#pragma once

#include "core/ops.h"

namespace cw::nn::init {

// U(-bound, bound).
Tensor uniform(const Shape& shape, double bound, DType dtype = DType::F32,
               Generator& gen = default_generator());
// N(0, std^2).
Tensor normal(const Shape& shape, double std, DType dtype = DType::F32, Generator& gen = default_generator());
// nn.Linear / nn.Conv weight default: kaiming_uniform_(a = sqrt(5)), which works out to
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)); fan_in = shape[1] * prod(shape[2:]).
Tensor kaiming_uniform_linear(const Shape& shape, DType dtype = DType::F32,
                              Generator& gen = default_generator());
// nn.Linear / nn.Conv bias default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
Tensor bias_uniform(int64_t size, int64_t fan_in, DType dtype = DType::F32,
                    Generator& gen = default_generator());
// Xavier/Glorot uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (torch.nn.init.xavier_uniform_).
Tensor xavier_uniform(const Shape& shape, DType dtype = DType::F32, Generator& gen = default_generator());

}  // namespace cw::nn::init
