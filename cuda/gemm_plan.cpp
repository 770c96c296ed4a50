// The GEMM plan (see gemm_plan.h).
#include "cuda/gemm_plan.h"

#include <algorithm>

namespace cw::cuda {
namespace {

struct MatLayout {
  bool transposed;  // false: row-major, ld = row stride; true: column-major, ld = column stride
  int64_t ld;       // -1: neither layout fits
};

// As core/cpu/cpu_matmul.cpp's layout_of.
MatLayout layout_of(const Tensor& t) {
  const int64_t rows = t.size(-2), cols = t.size(-1);
  const int64_t s0 = t.stride(-2), s1 = t.stride(-1);
  if ((s1 == 1 || cols == 1) && (s0 >= std::max<int64_t>(cols, 1) || rows == 1))
    return {false, rows == 1 ? std::max<int64_t>(cols, 1) : s0};
  if ((s0 == 1 || rows == 1) && (s1 >= std::max<int64_t>(rows, 1) || cols == 1))
    return {true, cols == 1 ? std::max<int64_t>(rows, 1) : s1};
  return {false, -1};
}

// Equal spacing of a batch's offsets, or -1.
int64_t uniform_stride(const std::vector<int64_t>& off) {
  if (off.size() < 2) return 0;
  const int64_t s = off[1] - off[0];
  for (size_t i = 2; i < off.size(); ++i)
    if (off[i] - off[i - 1] != s) return -1;
  return s;
}

}  // namespace

GemmPlan plan_gemm(const Tensor& a_in, const Tensor& b_in, const Tensor& out) {
  Tensor a = a_in, b = b_in;
  MatLayout la = layout_of(a), lb = layout_of(b);
  if (la.ld < 0) {
    a = a.contiguous();
    la = layout_of(a);
  }
  if (lb.ld < 0) {
    b = b.contiguous();
    lb = layout_of(b);
  }
  GemmPlan p;
  p.first = b;
  p.second = a;
  p.trans_first = lb.transposed;
  p.trans_second = la.transposed;
  p.m = b.size(-1);
  p.n = a.size(-2);
  p.k = a.size(-1);
  p.ld_first = lb.ld;
  p.ld_second = la.ld;
  p.ldc = p.m;
  const int64_t nb = out.dim() - 2;
  const Shape batch(out.shape().begin(), out.shape().begin() + nb);
  p.batch = numel_of(batch);
  p.off_first.resize(p.batch);
  p.off_second.resize(p.batch);
  for (int64_t i = 0; i < p.batch; ++i) {
    int64_t rem = i, oa = 0, ob = 0;
    for (int64_t d = nb - 1; d >= 0; --d) {
      const int64_t idx = rem % batch[d];
      rem /= batch[d];
      oa += idx * a.stride(d);
      ob += idx * b.stride(d);
    }
    p.off_first[i] = ob;
    p.off_second[i] = oa;
  }
  p.stride_first = uniform_stride(p.off_first);
  p.stride_second = uniform_stride(p.off_second);
  p.strided = p.stride_first >= 0 && p.stride_second >= 0;
  return p;
}

}  // namespace cw::cuda
