// Initializers (see init.h).
#include "nn/init.h"

#include <cmath>

namespace cw::nn::init {
namespace {
int64_t fan_in_of(const Shape& s) {
  CW_CHECK(s.size() >= 2, ShapeError, "init: fan-in needs a weight of at least 2 dims, got ", shape_str(s));
  int64_t f = s[1];
  for (size_t i = 2; i < s.size(); ++i) f *= s[i];
  return f;
}
}  // namespace

Tensor uniform(const Shape& shape, double bound, DType dtype, Generator& gen) {
  return ops::uniform(shape, -bound, bound, dtype, gen);
}

Tensor normal(const Shape& shape, double std, DType dtype, Generator& gen) {
  return ops::normal(shape, 0.0, std, dtype, gen);
}

Tensor kaiming_uniform_linear(const Shape& shape, DType dtype, Generator& gen) {
  // gain = sqrt(2 / (1 + a^2)) with a = sqrt(5) -> sqrt(1/3); bound = gain * sqrt(3 / fan_in).
  return uniform(shape, 1.0 / std::sqrt(static_cast<double>(fan_in_of(shape))), dtype, gen);
}

Tensor bias_uniform(int64_t size, int64_t fan_in, DType dtype, Generator& gen) {
  return uniform({size}, fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0, dtype, gen);
}

Tensor xavier_uniform(const Shape& shape, DType dtype, Generator& gen) {
  const int64_t fan_in = fan_in_of(shape);
  int64_t fan_out = shape[0];
  for (size_t i = 2; i < shape.size(); ++i) fan_out *= shape[i];
  return uniform(shape, std::sqrt(6.0 / static_cast<double>(fan_in + fan_out)), dtype, gen);
}

}  // namespace cw::nn::init
