// pad_features (see feature_batch.h).
#include "data/feature_batch.h"

#include <algorithm>

#include "core/error.h"
#include "core/ops.h"

namespace cw::data {

FeatureBatch pad_features(const std::vector<Tensor>& features, double pad_value) {
  CW_CHECK(!features.empty(), ShapeError, "pad_features: empty batch");
  const int64_t batch = static_cast<int64_t>(features.size());
  int64_t t_max = 0, dim = -1;
  for (int64_t b = 0; b < batch; ++b) {
    const Tensor& f = features[static_cast<size_t>(b)];
    CW_CHECK(f.defined() && f.dim() == 2 && f.dtype() == DType::F32 && f.device() == Device::cpu(),
             ShapeError, "pad_features: item ", b, " must be f32 (T, F) on cpu, got ",
             f.defined() ? describe(f) : std::string("an undefined tensor"));
    if (dim < 0) dim = f.size(1);
    CW_CHECK(f.size(1) == dim, ShapeError, "pad_features: item ", b, " has ", f.size(1),
             " features per frame, item 0 has ", dim);
    t_max = std::max(t_max, f.size(0));
  }
  FeatureBatch out;
  out.features = ops::full({batch, t_max, dim}, pad_value, DType::F32);
  out.lengths = Tensor::empty({batch}, DType::I64);
  int64_t* lengths = out.lengths.data<int64_t>();
  for (int64_t b = 0; b < batch; ++b) {
    const Tensor& f = features[static_cast<size_t>(b)];
    lengths[b] = f.size(0);
    if (f.size(0) > 0) out.features.select(0, b).narrow(0, 0, f.size(0)).copy_(f);
  }
  return out;
}

}  // namespace cw::data
