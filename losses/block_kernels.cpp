// Row-block helpers of the fused contrastive losses (see block_kernels.h).
#include "losses/block_kernels.h"

#include <algorithm>

#include "core/backend.h"
#include "core/error.h"
#include "core/ops.h"

namespace cw::losses::blocks {
namespace {

constexpr int64_t kParallelMin = int64_t{1} << 18;  // elements; fewer stay on one thread

}  // namespace

int64_t choose_block_rows(int64_t n, int64_t buffers, int64_t requested) {
  if (n <= 0) return 1;
  if (requested > 0) return std::min(requested, n);
  int64_t b = std::max<int64_t>(32, kBlockElements / n);
  b = std::min(b, std::max<int64_t>(1, n / std::max<int64_t>(buffers, 1)));
  return std::clamp<int64_t>(b, 1, n);
}

void gemm_into(const Tensor& a, const Tensor& b, Tensor& out) {
  // The CPU backend threads a big product itself (row slices in our OpenMP team).
  backend_for(out.device(), "contrastive_loss").matmul(a, b, out);
}

void add_into(Tensor& dst, const Tensor& src) {
  CW_CHECK(
      dst.is_contiguous() && src.is_contiguous() && dst.shape() == src.shape() && dst.dtype() == src.dtype(),
      Error, "contrastive_loss: add_into needs matching contiguous tensors");
  if (!dst.device().is_cpu()) {  // one kernel and one copy; the CPU loop below adds in place
    dst.copy_(ops::add(dst, src));
    return;
  }
  dispatch_float(dst.dtype(), "contrastive_loss", [&]<class T>() {
    T* d = dst.data<T>();
    const T* s = src.data<T>();
    const int64_t n = dst.numel();
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) d[i] += s[i];
  });
}

}  // namespace cw::losses::blocks
