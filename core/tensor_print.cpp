// Human-readable printing of tensors, in PyTorch's layout:
//   tensor([[ 0.1000, -2.0000],
//           [ 3.5000,  4.0000]], dtype=f32)
// Large tensors (over 1000 elements) show the first and last 3 entries of each dim around "...".
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/tensor.h"

namespace cw {
namespace {

constexpr int64_t kSummarizeAbove = 1000;
constexpr int64_t kEdgeItems = 3;

struct Printer {
  const std::vector<double>& values;
  const Shape& shape;
  Strides strides;  // contiguous strides of `shape`
  bool integer;
  bool scientific = false;
  bool summarize;
  int width = 0;

  std::string fmt(double v) const {
    char buf[64];
    if (integer)
      std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    else if (scientific)
      std::snprintf(buf, sizeof buf, "%.4e", v);
    else
      std::snprintf(buf, sizeof buf, "%.4f", v);
    return buf;
  }

  // Indices shown along a dim of size n.
  std::vector<int64_t> shown(int64_t n) const {
    std::vector<int64_t> idx;
    if (!summarize || n <= 2 * kEdgeItems) {
      for (int64_t i = 0; i < n; ++i) idx.push_back(i);
    } else {
      for (int64_t i = 0; i < kEdgeItems; ++i) idx.push_back(i);
      idx.push_back(-1);  // the "..." marker
      for (int64_t i = n - kEdgeItems; i < n; ++i) idx.push_back(i);
    }
    return idx;
  }

  void print(std::ostream& os, size_t d, int64_t base, int indent) const {
    if (d == shape.size()) {
      std::string s = fmt(values[base]);
      os << std::string(std::max<int>(0, width - static_cast<int>(s.size())), ' ') << s;
      return;
    }
    os << "[";
    const auto idx = shown(shape[d]);
    for (size_t k = 0; k < idx.size(); ++k) {
      if (k > 0) {
        os << ",";
        if (d + 1 == shape.size())
          os << " ";
        else
          os << std::string(shape.size() - d - 1, '\n') << std::string(indent + 1, ' ');
      }
      if (idx[k] < 0)
        os << "...";
      else
        print(os, d + 1, base + idx[k] * strides[d], indent + 1);
    }
    os << "]";
  }
};

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream os;
  if (!device().is_cpu()) {
    os << "tensor(<" << shape_str(shape_) << " on " << device().str() << ">, dtype=" << dtype_name(dtype_)
       << ")";
    return os.str();
  }
  const std::vector<double> values = to_vector<double>();
  Printer p{
      values, shape_, contiguous_strides(shape_), dtype_ == DType::I64, false, numel() > kSummarizeAbove};
  double max_abs = 0, min_abs = INFINITY;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    max_abs = std::max(max_abs, std::abs(v));
    if (v != 0) min_abs = std::min(min_abs, std::abs(v));
  }
  p.scientific = !p.integer && (max_abs >= 1e5 || (min_abs < 1e-4 && max_abs > 0));
  for (double v : values) p.width = std::max(p.width, static_cast<int>(p.fmt(v).size()));
  os << "tensor(";
  p.print(os, 0, 0, static_cast<int>(std::string("tensor(").size()));
  os << ", dtype=" << dtype_name(dtype_);
  if (shape_.size() != 1 || numel() == 0) os << ", shape=" << shape_str(shape_);
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace cw
