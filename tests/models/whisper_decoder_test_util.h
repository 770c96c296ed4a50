// Helpers shared by the Whisper decoder tests (whisper_decoder_test.cpp and its CTranslate2
// parity half, whisper_decoder_ct2_test.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "core/ops.h"

namespace cw::test {

// The largest |a - b| over all elements.
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  return ops::amax(ops::abs(ops::sub(a, b))).item();
}

// Token ids v as an i64 (rows, v.size() / rows) tensor.
inline Tensor ids_tensor(const std::vector<int64_t>& v, int64_t rows) {
  return ops::from_vector(v, {rows, static_cast<int64_t>(v.size()) / rows});
}

}  // namespace cw::test
