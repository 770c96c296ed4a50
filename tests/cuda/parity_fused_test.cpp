// CUDA vs CPU parity for the fused row, optimizer and CWCL-weight primitives
// (Backend::first_nonfinite, l2_normalize_rows and its backward, adamw_step, sum_of_squares;
// xent_weights, xent_weight_sums, row_topk; cuda/fused.cu and cuda/xent_weights.cu against
// core/cpu/cpu_fused.cpp and core/cpu/cpu_xent_weights.cpp), on shapes that span several blocks and rows
// longer than a block.
#include <algorithm>
#include <cmath>
#include <limits>

#include "cuda_test_util.h"

namespace cw::test {
namespace {

class CudaParityFused : public CudaTest {};

TEST_F(CudaParityFused, FirstNonfinite) {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor x = rnd({700, 1300}, dt, -1, 1, 11).to(DType::F64).contiguous();
    EXPECT_EQ(ops::first_nonfinite(x.to(dt).to(gpu())), -1);
    x.data<double>()[800000] = NAN;
    x.data<double>()[912345] = -INFINITY;
    x.data<double>()[123456] = INFINITY;
    EXPECT_EQ(ops::first_nonfinite(x.to(dt).to(gpu())), 123456);
    EXPECT_EQ(ops::first_nonfinite(x.to(dt).to(gpu())), ops::first_nonfinite(x.to(dt)));
  }
}

TEST_F(CudaParityFused, L2NormalizeRowsForwardAndBackward) {
  for (DType dt : {DType::F32, DType::F64}) {
    for (const Shape& shape : {Shape{5, 3}, Shape{64, 384}, Shape{3, 3000}}) {
      Tensor z = rnd(shape, dt, -1, 1, 12).to(DType::F64).contiguous();
      for (int64_t k = 0; k < shape[1]; ++k) z.data<double>()[shape[1] + k] = 0.0;  // row 1: clamped
      z = z.to(dt);
      const Tensor g = rnd(shape, dt, -1, 1, 13);
      const ops::L2NormalizedRows c = ops::l2_normalize_rows(z, 1e-12);
      const ops::L2NormalizedRows d = ops::l2_normalize_rows(z.to(gpu()), 1e-12);
      EXPECT_TRUE(all_close(d.unit.to(Device::cpu()), c.unit, atol_for(dt), rtol_for(dt)));
      EXPECT_TRUE(all_close(d.norm.to(Device::cpu()), c.norm, atol_for(dt), rtol_for(dt)));
      const Tensor gc = ops::l2_normalize_rows_backward(g, c.unit, c.norm, 1e-12);
      const Tensor gd = ops::l2_normalize_rows_backward(g.to(gpu()), d.unit, d.norm, 1e-12);
      // The clamped row's gradient is g / eps (~1e12): compare relative to it.
      EXPECT_TRUE(all_close(gd.to(Device::cpu()), gc, atol_for(dt), rtol_for(dt)));
    }
  }
}

TEST_F(CudaParityFused, AdamWStep) {
  for (DType dt : {DType::F32, DType::F64}) {
    const AdamWStep s{1.0 - 1e-3 * 0.01,
                      1e-3 / (1.0 - std::pow(0.9, 3)),
                      std::sqrt(1.0 - std::pow(0.999, 3)),
                      0.9,
                      0.999,
                      1e-8};
    Tensor p = rnd({300, 257}, dt, -1, 1, 14), m = rnd({300, 257}, dt, -0.1, 0.1, 15);
    Tensor v = rnd({300, 257}, dt, 0, 0.01, 16);
    const Tensor g = rnd({300, 257}, dt, -1, 1, 17);
    Tensor pd = p.to(gpu()), md = m.to(gpu()), vd = v.to(gpu());
    ops::adamw_step_(p, g, m, v, s);
    ops::adamw_step_(pd, g.to(gpu()), md, vd, s);
    // Element math is f64 on both sides: the same formula to the last bit or two.
    EXPECT_TRUE(all_close(pd.to(Device::cpu()), p, atol_for(dt), rtol_for(dt)));
    EXPECT_TRUE(all_close(md.to(Device::cpu()), m, atol_for(dt), rtol_for(dt)));
    EXPECT_TRUE(all_close(vd.to(Device::cpu()), v, atol_for(dt), rtol_for(dt)));
  }
}

TEST_F(CudaParityFused, SumOfSquares) {
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor x = rnd({1000, 1001}, dt, -1, 1, 18);
    const double c = ops::sum_of_squares(x), d = ops::sum_of_squares(x.to(gpu()));
    EXPECT_NEAR(d, c, 1e-12 * c);  // both accumulate in f64; only the order differs
  }
}

// CWCL's weight blocks: every kernel and mask on a block of cosines that starts mid-matrix, the
// block's sums, and each row's top k (with ties, which both sides break by the lower column).
TEST_F(CudaParityFused, XentWeightsSumsAndTopK) {
  const int64_t n = 300, row0 = 70, rows = 130;
  std::vector<int64_t> offsets{0}, index;  // row i keeps i and a few columns after it
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j : {i, (i + 7) % n, (i * 13) % n}) index.push_back(j);
    std::sort(index.begin() + offsets.back(), index.end());
    index.erase(std::unique(index.begin() + offsets.back(), index.end()), index.end());
    offsets.push_back(static_cast<int64_t>(index.size()));
  }
  const Tensor off = ops::from_vector(offsets, {n + 1});
  const Tensor idx = ops::from_vector(index, {static_cast<int64_t>(index.size())});
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor cos = rnd({rows, n}, dt, -1, 1, 19);
    for (XentWeightKernel kernel : {XentWeightKernel::Linear, XentWeightKernel::Exp})
      for (XentWeightMask mask : {XentWeightMask::None, XentWeightMask::TopK, XentWeightMask::Threshold}) {
        const XentWeightSpec s{kernel, 0.2, mask, 0.1};
        Tensor wc = cos.clone(), wd = cos.clone().to(gpu());
        ops::xent_weights_(wc, row0, s, off, idx);
        ops::xent_weights_(wd, row0, s, off.to(gpu()), idx.to(gpu()));
        EXPECT_TRUE(all_close(wd.to(Device::cpu()), wc, atol_for(dt), rtol_for(dt)))
            << int(kernel) << " " << int(mask);
        Tensor rc = ops::zeros({rows}, DType::F64), cc = ops::zeros({n}, DType::F64);
        Tensor rd = rc.to(gpu()), cd = cc.to(gpu());
        ops::xent_weight_sums(wc, rc, cc);
        ops::xent_weight_sums(wc.to(gpu()), rd, cd);
        EXPECT_TRUE(all_close(rd.to(Device::cpu()), rc, 1e-4, 1e-5));  // the CPU sums rows in dt
        EXPECT_TRUE(all_close(cd.to(Device::cpu()), cc, 1e-4, 1e-5));
      }
    Tensor c = rnd({rows, n}, dt, -1, 1, 20).to(DType::F64).contiguous();
    for (int64_t k = 0; k < rows; k += 5) c.data<double>()[k * n + 3] = c.data<double>()[k * n + 200] = 2.0;
    const Tensor ct = c.to(dt);
    for (int64_t k : {int64_t{1}, int64_t{4}}) {
      auto sorted_rows = [&](const Tensor& top) {
        std::vector<int64_t> v = top.to(Device::cpu()).to_vector<int64_t>();
        for (int64_t r = 0; r < rows; ++r) std::sort(v.begin() + r * k, v.begin() + (r + 1) * k);
        return v;
      };
      EXPECT_EQ(sorted_rows(ops::row_topk(ct.to(gpu()), k)), sorted_rows(ops::row_topk(ct, k))) << "k=" << k;
    }
  }
}

}  // namespace
}  // namespace cw::test
