// The CUDA kernels' per-element math, run on the host (no GPU needed): OffsetCalc (strided
// elementwise kernels) against direct stride arithmetic; the elementwise functions and derivatives
// (core/elementwise_math.h, shared with the CPU backend's scalar loops), the convolution kernels'
// per-element functions (cuda/conv_math.h), the indexing kernels' offsets (cuda/index_math.h) and
// the fused cross-entropy kernels' rules (cuda/xent_math.h) against the CPU backend. The kernels
// call exactly these functions, one element per thread. (On the device expf & co. differ from
// glibc in the last ulps; the parity suite covers that.)
#include <gtest/gtest.h>

#include <limits>
#include <random>

#include "core/backend.h"
#include "core/elementwise_math.h"
#include "core/ops.h"
#include "cuda/conv_math.h"
#include "cuda/index_math.h"
#include "cuda/reduce_math.h"
#include "cuda/strided.h"
#include "cuda/xent_math.h"
#include "support/check.h"

namespace cw {
namespace {

// Element offsets of t's elements in row-major order, straight from its strides.
std::vector<int64_t> direct_offsets(const Tensor& t) {
  std::vector<int64_t> out(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) {
    int64_t rem = i, off = 0;
    for (int64_t d = t.dim() - 1; d >= 0; --d) {
      off += (rem % t.size(d)) * t.stride(d);
      rem /= t.size(d);
    }
    out[i] = off;
  }
  return out;
}

TEST(CudaKernelMath, OffsetCalcMatchesStrides) {
  const Tensor base = ops::zeros({4, 5, 6, 3});
  const std::vector<Tensor> views = {
      base,                                                 // contiguous: merged to one dim
      base.permute({2, 0, 3, 1}),                           // permuted
      base.slice(1, 1, 5, 2).transpose(0, 3),               // stepped and transposed
      base.select(2, 4).unsqueeze(1).expand({4, 7, 5, 3}),  // broadcast (stride 0)
      ops::zeros({5}).expand({2, 3, 5}),                    // leading broadcast dims
      ops::zeros({}),                                       // 0-d
      base.narrow(0, 1, 1).narrow(3, 2, 1),                 // size-1 dims
  };
  for (const Tensor& v : views) {
    const Tensor out = ops::zeros(v.shape());  // a contiguous output beside the strided input
    bool contig = false;
    const auto calc = cuda::make_offset_calc<2>(v.shape(), {&out.strides(), &v.strides()}, contig, "test");
    const auto want = direct_offsets(v), want_out = direct_offsets(out);
    for (int64_t i = 0; i < v.numel(); ++i) {
      int64_t off[2];
      calc.get(i, off);
      ASSERT_EQ(off[0], want_out[i]) << shape_str(v.shape()) << " element " << i;
      ASSERT_EQ(off[1], want[i]) << shape_str(v.shape()) << " strides " << shape_str(v.strides())
                                 << " element " << i;
    }
    EXPECT_EQ(contig, v.is_contiguous() && v.numel() > 0)
        << shape_str(v.shape()) << " " << shape_str(v.strides());
  }
}

TEST(CudaKernelMath, OffsetCalcRejectsTooManyDims) {
  Shape shape(14, 2);
  Tensor t = ops::zeros(shape);
  // Reverse every dim's order so that no two dims merge.
  std::vector<int64_t> perm(14);
  for (int64_t d = 0; d < 14; ++d) perm[d] = 13 - d;
  const Tensor p = t.permute(perm);
  const Tensor out = ops::zeros(p.shape());
  bool contig = false;
  EXPECT_THROW((cuda::make_offset_calc<2>(p.shape(), {&out.strides(), &p.strides()}, contig, "test")),
               NotImplementedError);
}

struct ConvCase {
  int64_t n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw;
};

ConvGeometry geometry(const ConvCase& k) {
  return {k.c, k.h, k.w, k.kh, k.kw, k.sh, k.sw, k.ph, k.pw, k.dh, k.dw};
}

const std::vector<ConvCase> kConvCases = {
    {2, 3, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1},     // same-padded 3x3
    {1, 2, 9, 11, 3, 2, 2, 3, 1, 2, 2, 1},    // strides, padding, dilation, non-square
    {3, 4, 1, 40, 1, 31, 1, 1, 0, 15, 1, 1},  // Conformer depthwise conv1d (k = 31)
    {2, 2, 1, 17, 1, 5, 1, 2, 0, 0, 1, 3},    // conv1d with stride and dilation, no padding
};

TEST(CudaKernelMath, Im2colAndCol2imMatchCpu) {
  Backend& cpu = backend_for(Device::cpu(), "test");
  for (const ConvCase& k : kConvCases) {
    const ConvGeometry g = geometry(k);
    const cuda::Geo geo = cuda::geo_of(g);
    const int64_t L = g.out_h() * g.out_w();
    const Tensor x = test::rand64({k.n, k.c, k.h, k.w});
    Tensor cols = ops::empty({k.n, k.c * k.kh * k.kw, L}, DType::F64);
    cpu.im2col(x, g, cols);
    const auto want = cols.to_vector<double>();
    for (int64_t i = 0; i < cols.numel(); ++i)
      ASSERT_EQ(cuda::im2col_at(x.data<double>(), i, geo), want[i]) << "case kw " << k.kw << " element " << i;

    const Tensor gcols = test::rand64(cols.shape(), -1, 1, 3);
    Tensor gx = ops::full(x.shape(), std::numeric_limits<double>::quiet_NaN(),
                          DType::F64);  // col2im overwrites every pixel
    cpu.col2im(gcols, g, gx);
    const auto want_x = gx.to_vector<double>();
    for (int64_t i = 0; i < gx.numel(); ++i)
      ASSERT_NEAR(cuda::col2im_at(gcols.data<double>(), i, geo), want_x[i], 1e-12) << "element " << i;
  }
}

TEST(CudaKernelMath, DepthwiseMatchesCpu) {
  Backend& cpu = backend_for(Device::cpu(), "test");
  for (const ConvCase& k : kConvCases) {
    const ConvGeometry g = geometry(k);
    const cuda::Geo geo = cuda::geo_of(g);
    const Tensor x = test::rand64({k.n, k.c, k.h, k.w}, -1, 1, 1);
    const Tensor w = test::rand64({k.c, k.kh, k.kw}, -1, 1, 2);
    Tensor y = ops::empty({k.n, k.c, g.out_h(), g.out_w()}, DType::F64);
    cpu.depthwise_conv(x, w, g, y);
    const auto want_y = y.to_vector<double>();
    for (int64_t i = 0; i < y.numel(); ++i)
      ASSERT_NEAR(cuda::depthwise_forward_at(x.data<double>(), w.data<double>(), i, geo), want_y[i], 1e-12);

    const Tensor gy = test::rand64(y.shape(), -1, 1, 3);
    Tensor gx = ops::empty(x.shape(), DType::F64);
    cpu.depthwise_conv_backward_input(gy, w, g, gx);
    const auto want_gx = gx.to_vector<double>();
    for (int64_t i = 0; i < gx.numel(); ++i)
      ASSERT_NEAR(cuda::depthwise_input_grad_at(gy.data<double>(), w.data<double>(), i, geo), want_gx[i],
                  1e-12);

    Tensor gw = ops::empty(w.shape(), DType::F64);
    cpu.depthwise_conv_backward_weight(gy, x, g, gw);
    const auto want_gw = gw.to_vector<double>();
    const int64_t terms = k.n * g.out_h() * g.out_w();
    for (int64_t b = 0; b < gw.numel(); ++b) {
      double s = 0;
      for (int64_t j = 0; j < terms; ++j)
        s += cuda::depthwise_weight_grad_term(gy.data<double>(), x.data<double>(), b, j, geo);
      ASSERT_NEAR(s, want_gw[b], 1e-11) << "tap " << b;
    }
  }
}

TEST(CudaKernelMath, IndexOffsetsMatchCpu) {
  Backend& cpu = backend_for(Device::cpu(), "test");
  const Tensor x = test::rand64({4, 6, 5});
  const Tensor idx = test::i64({5, 0, 5, 2}, {4});
  for (int64_t dim : {0, 1, 2}) {
    Shape shape = x.shape();
    const Tensor index = dim == 0 ? test::i64({3, 0, 3, 2}, {4}) : idx.narrow(0, 0, dim == 2 ? 3 : 4);
    shape[dim] = index.numel();
    Tensor out = ops::empty(shape, DType::F64);
    cpu.index_select(x, dim, index, out);
    const auto want = out.to_vector<double>();
    const cuda::Around a = cuda::around(x.shape(), dim);
    for (int64_t t = 0; t < out.numel(); ++t)
      ASSERT_EQ(x.data<double>()[cuda::selected_offset(t, index.data<int64_t>(), index.numel(), a)], want[t])
          << "dim " << dim << " element " << t;
  }
  // gather along each dim with an index smaller than x in the other dims.
  for (int64_t dim : {0, 1, 2}) {
    const Tensor gi =
        ops::minimum(ops::mul(test::rand64({3, 4, 2}, 0, 1, 9), static_cast<double>(x.size(dim))),
                     static_cast<double>(x.size(dim) - 1))
            .to(DType::I64);
    Tensor out = ops::empty(gi.shape(), DType::F64);
    cpu.gather(x, dim, gi, out);
    const auto want = out.to_vector<double>();
    const cuda::IndexGeo geo = cuda::index_geo(gi, x, "test");
    for (int64_t i = 0; i < out.numel(); ++i)
      ASSERT_EQ(x.data<double>()[cuda::gathered_offset(i, geo, dim, gi.data<int64_t>()[i])], want[i])
          << "dim " << dim << " element " << i;
  }
}

template <class T>
void check_unary(UnaryOp op, DType dt, double rtol) {
  Backend& cpu = backend_for(Device::cpu(), "test");
  const bool positive =
      op == UnaryOp::Log || op == UnaryOp::Sqrt || op == UnaryOp::Rsqrt || op == UnaryOp::Pow;
  const Tensor x = test::rand64({257}, positive ? 0.1 : -4, positive ? 3 : 4, 17).to(dt);
  const double p = 1.7;
  Tensor y = ops::empty(x.shape(), dt), gx = ops::empty(x.shape(), dt);
  cpu.unary(op, x, y, p);
  cpu.unary_backward(op, x, y, ops::ones(x.shape(), dt), gx, p);
  const T* px = x.data<T>();
  const T* py = y.data<T>();
  const T* pg = gx.data<T>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const T fy = unary_fn<T>(op, px[i], p), fg = unary_grad<T>(op, px[i], py[i], p);
    ASSERT_NEAR(fy, py[i], rtol * (1 + std::abs(py[i])))
        << unary_op_name(op) << " " << dtype_name(dt) << " x " << px[i];
    ASSERT_NEAR(fg, pg[i], rtol * (1 + std::abs(pg[i])))
        << unary_op_name(op) << "' " << dtype_name(dt) << " x " << px[i];
  }
}

TEST(CudaKernelMath, UnaryFunctionsAndDerivativesMatchCpu) {
  for (int o = 0; o <= static_cast<int>(UnaryOp::Pow); ++o) {
    check_unary<double>(static_cast<UnaryOp>(o), DType::F64, 1e-13);
    check_unary<float>(static_cast<UnaryOp>(o), DType::F32, 2e-6);
  }
}

TEST(CudaKernelMath, BinaryFunctionsMatchCpu) {
  Backend& cpu = backend_for(Device::cpu(), "test");
  // Small integers so that comparisons see ties.
  const Tensor a = test::rand64({64}, -3, 3, 5).to(DType::I64).to(DType::F64);
  const Tensor b = ops::add(test::rand64({64}, -3, 3, 6).to(DType::I64).to(DType::F64), 0.5);
  for (int o = 0; o <= static_cast<int>(BinaryOp::Ge); ++o) {
    const BinaryOp op = static_cast<BinaryOp>(o);
    for (const Tensor& rhs : {b, a}) {
      Tensor out = ops::empty(a.shape(), DType::F64);
      cpu.binary(op, a, rhs, out);
      for (int64_t i = 0; i < a.numel(); ++i) {
        if (op == BinaryOp::Div && rhs.data<double>()[i] == 0) continue;
        ASSERT_EQ(binary_fn<double>(op, a.data<double>()[i], rhs.data<double>()[i]), out.data<double>()[i])
            << binary_op_name(op) << " element " << i;
      }
    }
  }
}

// Combines the items in a random tree order, as a block reduction does, with `pick`.
template <class Item, class Pick>
Item random_tree(std::vector<Item> items, std::mt19937& rng, Pick pick) {
  while (items.size() > 1) {
    std::uniform_int_distribution<size_t> d(0, items.size() - 1);
    const size_t i = d(rng);
    Item a = items[i];
    items.erase(items.begin() + static_cast<int64_t>(i));
    const size_t j = std::uniform_int_distribution<size_t>(0, items.size() - 1)(rng);
    items[j] = pick(a, items[j]);
  }
  return items[0];
}

TEST(CudaKernelMath, ReductionRulesAreOrderFreeAndMatchCpu) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<std::vector<double>> rows = {
      {1, 3, 2, 3, 0, 3},                 // ties: the first maximum
      {-5, nan, 2, nan, 9},               // NaNs: the first NaN wins, max is NaN
      {-INFINITY, -INFINITY, -INFINITY},  // all -inf: index 0
      {4},
  };
  std::mt19937 rng(3);
  for (const auto& row : rows) {
    const Tensor x = test::f64(row, {1, static_cast<int64_t>(row.size())});
    const int64_t want_arg = ops::argmax(x, 1).to_vector<int64_t>()[0];
    const double want_max = ops::amax(x, {1}).to_vector<double>()[0],
                 want_min = ops::amin(x, {1}).to_vector<double>()[0];
    std::vector<std::pair<double, int64_t>> items;
    for (size_t i = 0; i < row.size(); ++i) items.emplace_back(row[i], static_cast<int64_t>(i));
    items.emplace_back(cuda::lowest<double>(), std::numeric_limits<int64_t>::max());  // an idle thread's pair
    const cuda::Combine<double> mx{ReduceOp::Max}, mn{ReduceOp::Min};
    for (int trial = 0; trial < 50; ++trial) {
      const auto best = random_tree(items, rng, [](auto a, auto b) {
        return cuda::better(a.first, a.second, b.first, b.second) ? a : b;
      });
      ASSERT_EQ(best.second, want_arg) << "trial " << trial;
      std::vector<double> vals(row.begin(), row.end());
      vals.push_back(mx.identity());
      const double m = random_tree(vals, rng, [&](double a, double b) { return mx(a, b); });
      EXPECT_TRUE(std::isnan(want_max) ? std::isnan(m) : m == want_max) << m << " vs " << want_max;
      vals.back() = mn.identity();
      const double n = random_tree(vals, rng, [&](double a, double b) { return mn(a, b); });
      EXPECT_TRUE(std::isnan(want_min) ? std::isnan(n) : n == want_min) << n << " vs " << want_min;
    }
  }
  // Mean's final division, floating and integer (as the CPU: integer division).
  EXPECT_EQ((cuda::finalize<double, float>(ReduceOp::Mean, 7.0, 2)), 3.5f);
  EXPECT_EQ((cuda::finalize<int64_t, int64_t>(ReduceOp::Mean, 7, 2)), 3);
  EXPECT_TRUE(std::isnan(cuda::finalize<double, double>(ReduceOp::Mean, 0.0, 0)));  // mean of nothing
}

using cuda::better;
using cuda::ColumnLse;
using cuda::gradient_element;
using cuda::merge_columns;
using cuda::RowMax;

// An (rows, n) f64 block with ties: values on a coarse grid, so maxima repeat within rows and
// within columns, across slabs and row blocks.
Tensor tied_block(int64_t rows, int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> v(-6, 6);
  std::vector<double> x(static_cast<size_t>(rows * n));
  for (double& e : x) e = 0.5 * v(rng);
  return ops::from_vector(x, {rows, n});
}

// The column pass as xent.cu runs it: each 64-row slab's max, first row and sum of exp(s - max),
// folded into the running state in row order by merge_columns; against the CPU backend's online
// pass over the same row blocks.
TEST(CudaKernelMath, XentColumnSlabsMergeToTheCpuState) {
  const int64_t n = 211, slab = 64;  // square: every row has its pair column
  const int64_t cuts[] = {0, 150, 200, 211};
  XentColumnState cpu = ops::xent_column_state(n, false, Device::cpu());
  std::vector<ColumnLse> st(n, ColumnLse{-INFINITY, 0, 0.0});
  for (int b = 0; b < 3; ++b) {
    const int64_t rows = cuts[b + 1] - cuts[b];
    const Tensor s = tied_block(rows, n, 40 + b);
    ops::xent_column_pass(s, Tensor(), cuts[b], true, false, cpu);
    const double* p = s.data<double>();
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k0 = 0; k0 < rows; k0 += slab) {
        const int64_t k1 = std::min(rows, k0 + slab);
        ColumnLse part{-INFINITY, cuts[b] + k0, 0.0};
        for (int64_t k = k0; k < k1; ++k)
          if (p[k * n + j] > part.max) {
            part.max = p[k * n + j];
            part.arg = cuts[b] + k;
          }
        for (int64_t k = k0; k < k1; ++k) part.sum += std::exp(p[k * n + j] - part.max);
        st[j] = merge_columns(st[j], part);
      }
  }
  const std::vector<double> mx = cpu.max.to_vector<double>(), sum = cpu.sum.to_vector<double>();
  const std::vector<int64_t> arg = cpu.argmax.to_vector<int64_t>();
  for (int64_t j = 0; j < n; ++j) {
    EXPECT_EQ(st[j].max, mx[j]) << "column " << j;
    EXPECT_EQ(st[j].arg, arg[j]) << "column " << j;
    EXPECT_NEAR(st[j].sum, sum[j], 1e-12 * sum[j]) << "column " << j;
  }
  // Empty sides: nothing to merge, and never exp(-inf - -inf).
  const ColumnLse empty{-INFINITY, 0, 0.0}, one{2.0, 5, 1.5};
  EXPECT_EQ(merge_columns(empty, one).arg, 5);
  EXPECT_EQ(merge_columns(one, empty).sum, 1.5);
  EXPECT_EQ(merge_columns(one, ColumnLse{2.0, 9, 1.0}).arg, 5);  // a tie keeps the earlier row
  EXPECT_DOUBLE_EQ(merge_columns(one, ColumnLse{3.0, 9, 1.0}).sum, 1.5 * std::exp(-1.0) + 1.0);
}

// The row kernel's hit rule (the lowest column attaining the row's max is the pair), reduced in
// any order with `better`, against the CPU pass's count.
TEST(CudaKernelMath, XentRowFirstArgmaxMatchesCpu) {
  const int64_t rows = 40, n = 45, row0 = 3;
  const Tensor s = tied_block(rows, n, 50);
  Tensor lse = ops::zeros({row0 + rows}, DType::F64), r;
  const XentRowTotals cpu = ops::xent_row_pass(s, Tensor(), row0, false, lse, r);
  const double* p = s.data<double>();
  std::mt19937_64 rng(51);
  int64_t hits = 0;
  for (int64_t k = 0; k < rows; ++k) {
    std::vector<int64_t> order(n);
    for (int64_t j = 0; j < n; ++j) order[j] = j;
    std::shuffle(order.begin(), order.end(), rng);  // a block reduction's order is not the columns'
    RowMax<double> best{-INFINITY, n};
    for (int64_t j : order) best = better(best, RowMax<double>{p[k * n + j], j});
    hits += best.index == row0 + k;
  }
  EXPECT_EQ(hits, cpu.correct);
  EXPECT_GT(cpu.correct, 0);  // the grid of values makes some rows hit and some tie
}

// gradient_element, element by element, against the CPU gradient pass, every target term on.
TEST(CudaKernelMath, XentGradientElementMatchesCpu) {
  const int64_t rows = 9, n = 13, row0 = 2;
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor s = ops::uniform({rows, n}, -3, 3, dt), w = ops::uniform({rows, n}, 0, 1, dt);
    const Tensor lse = ops::uniform({row0 + rows}, 1, 4, DType::F64);
    const Tensor r = ops::uniform({row0 + rows}, 1, 2, DType::F64);
    const Tensor clse = ops::uniform({n}, 1, 4, dt), cinv = ops::uniform({n}, 0.5, 1, dt);
    XentGradCoeffs c;
    c.alpha = 0.3;
    c.beta = 0.2;
    c.diag = 0.1;
    c.weighted_rows = c.weighted_cols = true;
    Tensor g = s.clone();
    ops::xent_gradient_(g, w, row0, c, lse, clse, r, cinv);
    const Tensor s64 = s.to(DType::F64), w64 = w.to(DType::F64), g64 = g.to(DType::F64);
    const Tensor clse64 = clse.to(DType::F64), cinv64 = cinv.to(DType::F64);
    dispatch_float(dt, "test", [&]<class T>() {
      for (int64_t k = 0; k < rows; ++k)
        for (int64_t j = 0; j < n; ++j) {
          const int64_t i = row0 + k;
          const T got = gradient_element<T>(
              static_cast<T>(s64.data<double>()[k * n + j]), static_cast<T>(w64.data<double>()[k * n + j]),
              static_cast<T>(c.alpha), static_cast<T>(lse.data<double>()[i]), static_cast<T>(c.beta),
              static_cast<T>(clse64.data<double>()[j]), true, static_cast<T>(c.alpha / r.data<double>()[i]),
              true, static_cast<T>(cinv64.data<double>()[j]), true, i == j ? static_cast<T>(c.diag) : T(0));
          EXPECT_NEAR(got, g64.data<double>()[k * n + j], dt == DType::F32 ? 2e-6 : 1e-14)
              << dtype_name(dt) << " element (" << k << ", " << j << ")";
        }
    });
  }
}

}  // namespace
}  // namespace cw
