// Utterance and global CMVN of filterbank features; statistics in double, files in WeNet's
// global_cmvn JSON (see audio_normalize.h).
#include "data/audio_normalize.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <system_error>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_read.h"
#include "core/ops.h"

namespace cw::data {
namespace {

// The (T, F) shape check shared by everything here; returns a contiguous f32 CPU tensor.
Tensor frames_of(const Tensor& x, const char* op) {
  CW_CHECK(x.defined() && x.dim() == 2 && x.dtype() == DType::F32 && x.device() == Device::cpu(), ShapeError,
           op, ": expected f32 (T, F) features on cpu, got ",
           x.defined() ? describe(x) : std::string("undefined"));
  return x.contiguous();
}

}  // namespace

Tensor utterance_cmvn(const Tensor& features, bool norm_vars, double eps) {
  const Tensor x = frames_of(features, "utterance_cmvn");
  const int64_t frames = x.size(0), dim = x.size(1);
  Tensor y = Tensor::empty({frames, dim}, DType::F32);
  if (frames == 0) return y;
  const float* in = x.data<float>();
  float* out = y.data<float>();
  std::vector<double> mean(static_cast<size_t>(dim), 0.0), var(static_cast<size_t>(dim), 0.0);
  for (int64_t t = 0; t < frames; ++t)
    for (int64_t f = 0; f < dim; ++f) mean[static_cast<size_t>(f)] += in[t * dim + f];
  for (double& m : mean) m /= static_cast<double>(frames);
  // Two passes (mean, then squared deviations): no cancellation for bins far from zero, as
  // log-mel energies of 32768-scaled audio are (values around 10-20).
  for (int64_t t = 0; t < frames; ++t)
    for (int64_t f = 0; f < dim; ++f) {
      const double d = in[t * dim + f] - mean[static_cast<size_t>(f)];
      var[static_cast<size_t>(f)] += d * d;
    }
  for (int64_t f = 0; f < dim; ++f) {
    const double m = mean[static_cast<size_t>(f)];
    const double scale =
        norm_vars ? 1.0 / std::sqrt(var[static_cast<size_t>(f)] / static_cast<double>(frames) + eps) : 1.0;
    for (int64_t t = 0; t < frames; ++t)
      out[t * dim + f] = static_cast<float>((static_cast<double>(in[t * dim + f]) - m) * scale);
  }
  return y;
}

GlobalCmvn::GlobalCmvn(int64_t dim) {
  CW_CHECK(dim > 0, ValueError, "GlobalCmvn: dim must be positive, got ", dim);
  sum_.assign(static_cast<size_t>(dim), 0.0);
  sum_sq_.assign(static_cast<size_t>(dim), 0.0);
}

void GlobalCmvn::accumulate(const Tensor& features) {
  const Tensor x = frames_of(features, "GlobalCmvn::accumulate");
  const int64_t frames = x.size(0), d = x.size(1);
  if (sum_.empty()) *this = GlobalCmvn(d);
  CW_CHECK(d == dim(), ShapeError, "GlobalCmvn::accumulate: features have ", d, " bins, the statistics ",
           dim());
  const float* p = x.data<float>();
  for (int64_t t = 0; t < frames; ++t)
    for (int64_t f = 0; f < d; ++f) {
      const double v = p[t * d + f];
      sum_[static_cast<size_t>(f)] += v;
      sum_sq_[static_cast<size_t>(f)] += v * v;
    }
  frames_ += frames;
}

void GlobalCmvn::merge(const GlobalCmvn& other) {
  if (other.sum_.empty()) return;
  if (sum_.empty()) *this = GlobalCmvn(other.dim());
  CW_CHECK(other.dim() == dim(), ShapeError, "GlobalCmvn::merge: ", other.dim(), " bins vs ", dim());
  for (size_t f = 0; f < sum_.size(); ++f) {
    sum_[f] += other.sum_[f];
    sum_sq_[f] += other.sum_sq_[f];
  }
  frames_ += other.frames_;
}

void GlobalCmvn::check_ready(const char* op) const {
  CW_CHECK(frames_ > 0 && !sum_.empty(), ValueError, "GlobalCmvn::", op, ": no frames accumulated");
}

Tensor GlobalCmvn::mean() const {
  check_ready("mean");
  std::vector<float> m(sum_.size());
  for (size_t f = 0; f < sum_.size(); ++f) m[f] = static_cast<float>(sum_[f] / static_cast<double>(frames_));
  return ops::from_vector(m, {dim()});
}

Tensor GlobalCmvn::istd() const {
  check_ready("istd");
  std::vector<float> s(sum_.size());
  for (size_t f = 0; f < sum_.size(); ++f) {
    const double m = sum_[f] / static_cast<double>(frames_);
    // wenet/utils/cmvn.py load_cmvn: var = E[x^2] - mean^2, floored at 1e-20, istd = 1 / sqrt.
    const double var = std::max(sum_sq_[f] / static_cast<double>(frames_) - m * m, 1e-20);
    s[f] = static_cast<float>(1.0 / std::sqrt(var));
  }
  return ops::from_vector(s, {dim()});
}

Tensor GlobalCmvn::apply(const Tensor& features) const {
  CW_CHECK(
      features.defined() && (features.dim() == 2 || features.dim() == 3) && features.dtype() == DType::F32,
      ShapeError, "GlobalCmvn::apply: expected f32 (T, F) or (B, T, F) features, got ",
      features.defined() ? describe(features) : std::string("undefined"));
  CW_CHECK(features.size(-1) == dim(), ShapeError, "GlobalCmvn::apply: features have ", features.size(-1),
           " bins, the statistics ", dim());
  const Device device = features.device();
  return ops::mul(ops::sub(features, mean().to(device)), istd().to(device));  // broadcast over (B, T)
}

void GlobalCmvn::save(const std::filesystem::path& path) const {
  check_ready("save");
  const Json j = {{"mean_stat", sum_}, {"var_stat", sum_sq_}, {"frame_num", frames_}};
  // nlohmann prints doubles in their shortest round-trip form: reloading is exact.
  write_file_atomic(path, j.dump() + "\n");
}

GlobalCmvn GlobalCmvn::load(const std::filesystem::path& path) {
  const std::string name = path.string();
  const Json doc = read_json_file(path, "GlobalCmvn::load: '" + name + "'");
  const JsonReader j(doc, "GlobalCmvn::load: '" + name + "'");
  GlobalCmvn cmvn;
  cmvn.sum_ = j.get<std::vector<double>>("mean_stat");
  cmvn.sum_sq_ = j.get<std::vector<double>>("var_stat");
  // WeNet writes frame_num as an int; accept an integral float too.
  const double n = j.get<double>("frame_num");
  j.at("frame_num").expect(n >= 1 && n == std::floor(n) && n <= 9e15, "a positive integer");
  cmvn.frames_ = static_cast<int64_t>(n);
  CW_CHECK(!cmvn.sum_.empty() && cmvn.sum_.size() == cmvn.sum_sq_.size(), ValueError, "GlobalCmvn::load: '",
           name, "': mean_stat has ", cmvn.sum_.size(), " values and var_stat ", cmvn.sum_sq_.size(),
           " (need the same number, at least one)");
  return cmvn;
}

}  // namespace cw::data
