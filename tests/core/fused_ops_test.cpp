// The fused row, optimizer and CWCL-weight primitives of core (ops.h: check_finite,
// l2_normalize_rows and its backward, adamw_step_, sum_of_squares, matmul_out, add_,
// xent_weights_, xent_weight_sums, row_topk) on the CPU: each against the same
// formula composed from plain ops or written out, plus the argument checks. Their CUDA kernels are
// checked against these in tests/cuda/parity_fused_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "autograd/functions.h"
#include "core/flop_counter.h"
#include "core/ops.h"
#include "support/check.h"

namespace cw {
namespace {

using test::all_close;
using test::rand64;

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(FusedOps, CheckFiniteNamesTheFirstBadElement) {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor t = rand64({3, 4, 5}).to(dt);
    EXPECT_EQ(ops::first_nonfinite(t), -1);
    EXPECT_NO_THROW(ops::check_finite(t, "op", "x"));
    Tensor bad = t.to(DType::F64).contiguous();
    bad.data<double>()[2 * 20 + 1 * 5 + 3] = INFINITY;  // [2, 1, 3]
    bad.data<double>()[2 * 20 + 3 * 5 + 0] = NAN;       // later: not the first
    bad = bad.to(dt);
    EXPECT_EQ(ops::first_nonfinite(bad), 2 * 20 + 1 * 5 + 3);
    const std::string m = error_of([&] { ops::check_finite(bad, "my_op", "x (the input)"); });
    EXPECT_NE(m.find("my_op: x (the input) contains NaN or Inf (first at [2, 1, 3]"), std::string::npos) << m;
    // A strided view is read in its own row-major order.
    EXPECT_EQ(ops::first_nonfinite(bad.transpose(0, 2)), 0 * 12 + 3 * 3 + 2);  // the NaN comes first there
  }
  EXPECT_EQ(ops::first_nonfinite(ops::zeros({4}, DType::I64)), -1);  // integers are always finite
  EXPECT_EQ(ops::first_nonfinite(ops::zeros({0, 3})), -1);
}

// z / max(||z||, eps), with a zero row (clamped) among ordinary ones.
TEST(FusedOps, L2NormalizeRowsMatchesTheComposedFormula) {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor z = rand64({6, 7}, -1, 1, 3).contiguous();
    for (int k = 0; k < 7; ++k) z.data<double>()[2 * 7 + k] = 0.0;
    z = z.to(dt);
    const double eps = 1e-12;
    const ops::L2NormalizedRows r = ops::l2_normalize_rows(z, eps);
    const Tensor norm = ops::sqrt(ops::sum(ops::mul(z, z), {1}, true));
    const double tol = dt == DType::F32 ? 1e-6 : 1e-14;
    EXPECT_TRUE(all_close(r.norm, norm, tol, tol));
    EXPECT_TRUE(all_close(r.unit, ops::div(z, ops::maximum(norm, eps)), tol, tol));
    // Backward: (g - u <u, g>) / ||z||, and g / eps on the clamped row.
    const Tensor g = rand64({6, 7}, -1, 1, 4).to(dt);
    const Tensor live = ops::gt(r.norm, eps);
    const Tensor radial = ops::mul(ops::sum(ops::mul(r.unit, g), {1}, true), live);
    const Tensor want = ops::div(ops::sub(g, ops::mul(radial, r.unit)), ops::maximum(r.norm, eps));
    EXPECT_TRUE(all_close(ops::l2_normalize_rows_backward(g, r.unit, r.norm, eps), want, tol, tol));
  }
}

// The backward is the derivative of the forward: central differences through a node built on the
// two primitives.
TEST(FusedOps, L2NormalizeRowsGradientCheck) {
  auto fn = [](const std::vector<Variable>& v) {
    const ops::L2NormalizedRows r = ops::l2_normalize_rows(v[0].data(), 1e-12);
    return ag::record(
        "l2_normalize_rows", r.unit, {v[0]}, [r](const std::vector<Tensor>& g, const std::vector<bool>&) {
          return std::vector<Tensor>{ops::l2_normalize_rows_backward(g[0], r.unit, r.norm, 1e-12)};
        });
  };
  EXPECT_TRUE(test::gradcheck(fn, {rand64({4, 5}, -1, 1, 9)}));
}

TEST(FusedOps, AdamWStepIsTheTorchUpdate) {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor p = rand64({5, 3}, -1, 1, 1).to(dt), m = rand64({5, 3}, -0.1, 0.1, 2).to(dt);
    Tensor v = rand64({5, 3}, 0, 0.01, 3).to(dt);
    const Tensor g = rand64({5, 3}, -1, 1, 4).to(dt);
    // clone: for f64, .to(F64) is p itself, which the step overwrites.
    const Tensor p0 = p.to(DType::F64).clone(), m0 = m.to(DType::F64).clone(), v0 = v.to(DType::F64).clone();
    const Tensor g0 = g.to(DType::F64);
    const AdamWStep s{
        1.0 - 1e-3 * 0.01, 1e-3 / (1.0 - 0.9 * 0.9), std::sqrt(1.0 - 0.999 * 0.999), 0.9, 0.999, 1e-8};
    ops::adamw_step_(p, g, m, v, s);
    const Tensor m1 = ops::add(ops::mul(m0, 0.9), ops::mul(g0, 0.1));
    const Tensor v1 = ops::add(ops::mul(v0, 0.999), ops::mul(ops::mul(g0, g0), 0.001));
    const Tensor denom = ops::add(ops::div(ops::sqrt(v1), s.bc2_sqrt), s.eps);
    const Tensor p1 = ops::sub(ops::mul(p0, s.decay), ops::mul(ops::div(m1, denom), s.step_size));
    const double tol = dt == DType::F32 ? 1e-6 : 1e-15;
    EXPECT_TRUE(all_close(m.to(DType::F64), m1, tol, tol));
    EXPECT_TRUE(all_close(v.to(DType::F64), v1, tol, tol));
    EXPECT_TRUE(all_close(p.to(DType::F64), p1, tol, tol));
  }
  Tensor p = ops::zeros({3}), m = ops::zeros({3}), v = ops::zeros({2});
  EXPECT_THROW(ops::adamw_step_(p, ops::zeros({3}), m, v, AdamWStep{}), ShapeError);
  EXPECT_THROW(ops::adamw_step_(p, ops::zeros({3}, DType::F64), m, m, AdamWStep{}), DTypeError);
}

TEST(FusedOps, SumOfSquaresInDouble) {
  const Tensor x = rand64({300, 301}, -1, 1, 5);
  EXPECT_NEAR(ops::sum_of_squares(x), ops::sum(ops::mul(x, x)).item(), 1e-9);
  EXPECT_NEAR(ops::sum_of_squares(x.to(DType::F32)), ops::sum(ops::mul(x, x)).item(), 1e-2);
  EXPECT_NEAR(ops::sum_of_squares(x.t()), ops::sum(ops::mul(x, x)).item(), 1e-9);  // strided
  EXPECT_EQ(ops::sum_of_squares(ops::zeros({0})), 0.0);
}

TEST(FusedOps, MatmulOutAndAddInPlace) {
  const Tensor a = rand64({4, 6}, -1, 1, 6), b = rand64({5, 6}, -1, 1, 7);
  Tensor out = ops::empty({4, 5}, DType::F64);
  {
    FlopCounter fc;
    ops::matmul_out(a, b.t(), out);  // a transposed operand, read in place
    EXPECT_EQ(fc.total(), 2 * 4 * 5 * 6);
  }
  EXPECT_TRUE(all_close(out, ops::matmul(a, b.t()), 1e-15, 0));
  Tensor wrong = ops::empty({4, 4}, DType::F64);
  EXPECT_THROW(ops::matmul_out(a, b.t(), wrong), ShapeError);
  Tensor strided = ops::empty({5, 4}, DType::F64).t();
  EXPECT_THROW(ops::matmul_out(a, b.t(), strided), ValueError);
  Tensor f32_out = ops::empty({4, 5});
  EXPECT_THROW(ops::matmul_out(a, b.t(), f32_out), DTypeError);

  Tensor dst = out.clone();
  ops::add_(dst, out);
  EXPECT_TRUE(all_close(dst, ops::mul(out, 2.0), 0, 0));
  EXPECT_THROW(ops::add_(dst, ops::zeros({4, 1}, DType::F64)), ShapeError);
}

// The CPU's vectorized weight kernel gives the shared scalar formula's numbers (kernel_math.h),
// for every kernel and mask, on a block that starts at row 2 of a 6 x 9 cosine matrix.
TEST(FusedOps, XentWeightsFollowTheScalarFormula) {
  const Tensor cos = rand64({4, 9}, -1, 1, 21);  // rows 2..5
  // Neighbour lists (CSR over all 6 rows, sorted): row i keeps i and (i + 3) mod 9.
  std::vector<int64_t> offsets{0}, index;
  for (int64_t i = 0; i < 6; ++i) {
    const int64_t a = i, b = (i + 3) % 9;
    index.push_back(std::min(a, b));
    index.push_back(std::max(a, b));
    offsets.push_back(static_cast<int64_t>(index.size()));
  }
  const Tensor off = ops::from_vector(offsets, {7}), idx = ops::from_vector(index, {12});
  for (DType dt : {DType::F32, DType::F64})
    for (XentWeightKernel kernel : {XentWeightKernel::Linear, XentWeightKernel::Exp})
      for (XentWeightMask mask : {XentWeightMask::None, XentWeightMask::TopK, XentWeightMask::Threshold}) {
        const XentWeightSpec s{kernel, 0.3, mask, 0.1};
        Tensor w = cos.to(dt).clone();
        ops::xent_weights_(w, 2, s, off, idx);
        const Tensor c64 = cos.to(dt).to(DType::F64), w64 = w.to(DType::F64);
        for (int64_t k = 0; k < 4; ++k)
          for (int64_t j = 0; j < 9; ++j) {
            const int64_t i = 2 + k;
            const bool listed = j == i || j == (i + 3) % 9;
            const double c = c64.data<double>()[k * 9 + j];
            const double want =
                dt == DType::F32
                    ? static_cast<double>(xent_weight_of<float>(static_cast<float>(c), i == j, s, listed))
                    : xent_weight_of<double>(c, i == j, s, listed);
            EXPECT_NEAR(w64.data<double>()[k * 9 + j], want, dt == DType::F32 ? 1e-6 : 1e-15)
                << int(kernel) << " " << int(mask) << " [" << k << ", " << j << "]";
          }
      }
  Tensor c = cos.clone();
  EXPECT_THROW(ops::xent_weights_(c, 2, {XentWeightKernel::Linear, 0.1, XentWeightMask::TopK, 0.5}),
               ShapeError);
}

TEST(FusedOps, XentWeightSumsAndRowTopK) {
  const Tensor w = rand64({5, 300}, 0, 1, 22);
  Tensor rows = ops::zeros({5}, DType::F64), cols = ops::ones({300}, DType::F64);
  ops::xent_weight_sums(w, rows, cols);
  EXPECT_TRUE(all_close(rows, ops::sum(w, {1}), 1e-12, 0));
  EXPECT_TRUE(all_close(cols, ops::add(ops::sum(w, {0}), 1.0), 1e-12, 0));  // added to what was there
  // Top 3 of each row, ties by the lower column: row 0 has three equal maxima after column 0.
  Tensor c = ops::from_vector(std::vector<double>{1, 5, 5, 5, 0, 2, 1, 3, 9, 3}, {2, 5});
  const std::vector<int64_t> top = ops::row_topk(c, 3).to_vector<int64_t>();
  std::vector<int64_t> r0(top.begin(), top.begin() + 3), r1(top.begin() + 3, top.end());
  std::sort(r0.begin(), r0.end());
  std::sort(r1.begin(), r1.end());
  EXPECT_EQ(r0, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(r1, (std::vector<int64_t>{2, 3, 4}));  // 9, then the two 3s
  EXPECT_THROW(ops::row_topk(c, 6), ValueError);
}

}  // namespace
}  // namespace cw
