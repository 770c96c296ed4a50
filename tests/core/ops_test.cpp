// Forward values of the core ops against closed forms, the agreement of every kernel path
// (contiguous, strided, broadcast, parallel-sized, f32 vs f64), and the errors bad input gets.
// Values against PyTorch itself are in reference_test.cpp.
#include <array>

#include "support/check.h"

namespace cw {
namespace {

using test::all_close;
using test::f64;
using test::i64;

TEST(Ops, BroadcastingBinary) {
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_TRUE(all_close(ops::add(a, f64({10, 20, 30}, {3})), f64({11, 22, 33, 14, 25, 36}, {2, 3})));
  EXPECT_TRUE(all_close(ops::mul(a, f64({2, 3}, {2, 1})), f64({2, 4, 6, 12, 15, 18}, {2, 3})));
  EXPECT_TRUE(all_close(ops::sub(f64({1}, {1}), a), f64({0, -1, -2, -3, -4, -5}, {2, 3})));
  EXPECT_TRUE(all_close(ops::div(a, 2.0), f64({0.5, 1, 1.5, 2, 2.5, 3}, {2, 3})));
  EXPECT_TRUE(all_close(ops::sub(1.0, a), f64({0, -1, -2, -3, -4, -5}, {2, 3})));
  EXPECT_EQ(ops::add(ops::zeros({3, 1}), ops::zeros({1, 4})).shape(), (Shape{3, 4}));
  EXPECT_TRUE(all_close(ops::maximum(a, 3.5), f64({3.5, 3.5, 3.5, 4, 5, 6}, {2, 3})));
  EXPECT_TRUE(all_close(ops::gt(a, 3.0), f64({0, 0, 0, 1, 1, 1}, {2, 3})));
  EXPECT_EQ(ops::add(i64({1, 2}, {2}), i64({10}, {1})).to_vector<int64_t>(), (std::vector<int64_t>{11, 12}));
}

TEST(Ops, UnaryClosedForms) {
  Tensor x = f64({-2, -0.5, 0, 0.5, 2}, {5});
  EXPECT_TRUE(all_close(ops::relu(x), f64({0, 0, 0, 0.5, 2}, {5})));
  EXPECT_TRUE(all_close(ops::abs(x), f64({2, 0.5, 0, 0.5, 2}, {5})));
  EXPECT_NEAR(ops::sigmoid(f64({0}, {1})).item(), 0.5, 1e-15);
  // gelu(x) = x * Phi(x); Phi(1) = 0.8413447460685429
  EXPECT_NEAR(ops::gelu(f64({1}, {1})).item(), 0.8413447460685429, 1e-15);
  EXPECT_NEAR(ops::gelu(f64({1}, {1}), ops::GeluApprox::Tanh).item(), 0.8411919906082768, 1e-15);
  EXPECT_NEAR(ops::silu(f64({1}, {1})).item(), 1 / (1 + std::exp(-1.0)), 1e-15);
  EXPECT_NEAR(ops::rsqrt(f64({4}, {1})).item(), 0.5, 1e-15);
  EXPECT_NEAR(ops::pow(f64({2}, {1}), 10).item(), 1024, 1e-12);
  EXPECT_THROW(ops::exp(i64({1}, {1})), DTypeError);
}

TEST(Ops, Reductions) {
  Tensor x = ops::arange(0, 24, 1, DType::F64).view({2, 3, 4});
  EXPECT_DOUBLE_EQ(ops::sum(x).item(), 276);
  EXPECT_TRUE(all_close(ops::sum(x, {0, 2}), f64({60, 92, 124}, {3})));
  EXPECT_EQ(ops::sum(x, {1}, true).shape(), (Shape{2, 1, 4}));
  EXPECT_TRUE(all_close(ops::mean(x, {-1}), f64({1.5, 5.5, 9.5, 13.5, 17.5, 21.5}, {2, 3})));
  EXPECT_TRUE(all_close(ops::amax(x, {0, 1}), f64({20, 21, 22, 23}, {4})));
  EXPECT_TRUE(all_close(ops::amin(x, {2}), f64({0, 4, 8, 12, 16, 20}, {2, 3})));
  EXPECT_NEAR(ops::var(f64({1, 2, 3, 4}, {4})).item(), 5.0 / 3.0, 1e-15);
  EXPECT_NEAR(ops::var(f64({1, 2, 3, 4}, {4}), {}, 0).item(), 1.25, 1e-15);
  EXPECT_EQ(ops::argmax(f64({1, 5, 5, 2, 9, 0}, {2, 3}), 1).to_vector<int64_t>(),
            (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(ops::argmax(f64({1, 5, 5, 2, 9, 0}, {2, 3}), 0, true).shape(), (Shape{1, 3}));
  // Reducing a non-contiguous view goes through the permute path.
  EXPECT_TRUE(all_close(ops::sum(x.transpose(0, 2), {1}), ops::sum(x, {1}).t()));
  EXPECT_THROW(ops::sum(x, {3}), IndexError);
  EXPECT_THROW(ops::sum(x, {1, -2}), IndexError);
  EXPECT_THROW(ops::amax(ops::zeros({0, 3})), ValueError);
  EXPECT_THROW(ops::var(f64({1}, {1})), ValueError);
}

// Long f32 sums (a loss over a big batch, a bias gradient) are summed in float SIMD blocks whose
// partial sums are added in double: the result must stay within a few float ulps of the exact sum,
// for a full sum and for a last-axis sum, with more blocks than threads.
TEST(Ops, LongFloatSumsKeepPrecision) {
  const int64_t n = 3'000'017;  // not a multiple of the block size
  std::vector<float> v(static_cast<size_t>(n));
  double exact = 0;
  for (int64_t i = 0; i < n; ++i) {
    v[i] = 0.1f + static_cast<float>(i % 97) * 1e-3f;
    exact += v[i];
  }
  const Tensor x = test::f32(v, {n});
  EXPECT_NEAR(ops::sum(x).item(), exact, 4e-7 * exact);
  EXPECT_NEAR(ops::mean(x).item(), exact / n, 4e-7 * exact / n);
  const Tensor rows = ops::sum(x.narrow(0, 0, 3'000'000).view({3, 1'000'000}), {1});
  for (int64_t r = 0; r < 3; ++r) {
    double e = 0;
    for (int64_t i = r * 1'000'000; i < (r + 1) * 1'000'000; ++i) e += v[i];
    EXPECT_NEAR(rows.to_vector<float>()[r], e, 4e-7 * e);
  }
}

TEST(Ops, SumToUndoesBroadcast) {
  Tensor g = ops::ones({2, 3, 4}, DType::F64);
  EXPECT_TRUE(all_close(ops::sum_to(g, {3, 1}), ops::full({3, 1}, 8, DType::F64)));
  EXPECT_TRUE(all_close(ops::sum_to(g, {}), ops::full({}, 24, DType::F64)));
  EXPECT_THROW(ops::sum_to(g, {5}), ShapeError);
}

TEST(Ops, MatmulSmall) {
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = f64({1, 0, 0, 1, 1, 1}, {3, 2});
  EXPECT_TRUE(all_close(ops::matmul(a, b), f64({4, 5, 10, 11}, {2, 2})));
  EXPECT_TRUE(all_close(ops::matmul(a.t(), a), f64({17, 22, 27, 22, 29, 36, 27, 36, 45}, {3, 3})));
  EXPECT_DOUBLE_EQ(ops::matmul(f64({1, 2}, {2}), f64({3, 4}, {2})).item(), 11);
  EXPECT_EQ(ops::matmul(ops::zeros({5, 1, 2, 3}), ops::zeros({4, 3, 7})).shape(), (Shape{5, 4, 2, 7}));
  EXPECT_THROW(ops::matmul(a, a), ShapeError);
  EXPECT_THROW(ops::matmul(a, b.to(DType::F32)), DTypeError);
}

// Every layout of every operand gives the same product, in both GEMM orientations.
TEST(Ops, MatmulLayoutsAgree) {
  Generator g(3);
  Tensor a = ops::uniform({3, 33, 17}, -1, 1, DType::F32, g),
         b = ops::uniform({3, 17, 9}, -1, 1, DType::F32, g);
  Tensor ref = ops::matmul(a.to(DType::F64), b.to(DType::F64));
  Tensor at = a.transpose(1, 2).contiguous().transpose(1, 2);  // column-major view
  Tensor bt = b.transpose(1, 2).contiguous().transpose(1, 2);
  for (const Tensor& x : {a, at})
    for (const Tensor& y : {b, bt}) EXPECT_TRUE(all_close(ops::matmul(x, y), ref.to(DType::F32), 1e-5, 1e-5));
  // A strided (every-other-column) operand that is neither layout gets copied.
  Tensor wide = ops::uniform({3, 33, 34}, -1, 1, DType::F32, g);
  Tensor every_other = wide.slice(2, 0, 34, 2);
  EXPECT_TRUE(all_close(ops::matmul(every_other, b), ops::matmul(every_other.contiguous(), b), 1e-6, 1e-6));
  // The folded (B*T, C) @ (C, N) path equals the batched one.
  Tensor w = ops::uniform({17, 5}, -1, 1, DType::F32, g);
  EXPECT_TRUE(all_close(ops::matmul(a, w), ops::matmul(a, w.expand({3, 17, 5})), 1e-6, 1e-6));
}

TEST(Ops, SoftmaxIsStableAndNormalized) {
  Tensor x = f64({1000, 1001, 1002, -1000, 0, 1000}, {2, 3});
  Tensor y = ops::softmax(x, 1);
  EXPECT_TRUE(all_close(ops::sum(y, {1}), f64({1, 1}, {2}), 1e-12));
  const double e1 = std::exp(-1.0), e2 = std::exp(-2.0), z = 1 + e1 + e2;
  EXPECT_TRUE(all_close(y.select(0, 0), f64({e2 / z, e1 / z, 1 / z}, {3}), 1e-15));
  // Row 2 spans 2000: exp() of it would overflow, the shifted form gives -2000 and 0 exactly.
  EXPECT_TRUE(all_close(ops::log_softmax(x, 1).select(0, 1), f64({-2000, -1000, 0}, {3}), 1e-12));
  EXPECT_TRUE(all_close(ops::exp(ops::log_softmax(x, 0)), ops::softmax(x, 0), 1e-15));
}

TEST(Ops, LayerNormNormalizes) {
  Generator g(4);
  Tensor x = ops::uniform({5, 64}, -3, 7, DType::F64, g);
  Tensor y = ops::layer_norm(x, 1, Tensor(), Tensor(), 0.0).y;
  EXPECT_TRUE(all_close(ops::mean(y, {1}), ops::zeros({5}, DType::F64), 1e-12));
  EXPECT_TRUE(all_close(ops::var(y, {1}, 0), ops::ones({5}, DType::F64), 1e-12));
  Tensor w = ops::full({64}, 2.0, DType::F64), b = ops::full({64}, 1.0, DType::F64);
  EXPECT_TRUE(all_close(ops::layer_norm(x, 1, w, b, 0.0).y, ops::add(ops::mul(y, 2.0), 1.0), 1e-12));
  EXPECT_THROW(ops::layer_norm(x, 1, ops::ones({63}, DType::F64), Tensor()), ShapeError);
  EXPECT_THROW(ops::layer_norm(x, 3, Tensor(), Tensor()), ShapeError);
}

TEST(Ops, Indexing) {
  Tensor w = ops::arange(0, 12, 1, DType::F64).view({4, 3});
  EXPECT_TRUE(
      all_close(ops::embedding(w, i64({3, 0, 3}, {3})), f64({9, 10, 11, 0, 1, 2, 9, 10, 11}, {3, 3})));
  EXPECT_EQ(ops::embedding(w, i64({1, 2, 3, 0}, {2, 2})).shape(), (Shape{2, 2, 3}));
  EXPECT_TRUE(all_close(ops::index_select(w, 1, i64({2, 0}, {2})), f64({2, 0, 5, 3, 8, 6, 11, 9}, {4, 2})));
  EXPECT_TRUE(all_close(ops::gather(w, 1, i64({0, 0, 2, 1}, {4, 1})), f64({0, 3, 8, 10}, {4, 1})));
  Tensor acc = ops::index_add(ops::zeros({3}, DType::F64), 0, i64({1, 1, 2}, {3}), f64({1, 2, 4}, {3}));
  EXPECT_TRUE(all_close(acc, f64({0, 3, 4}, {3})));
  Tensor sc = ops::scatter_add(ops::zeros({2, 2}, DType::F64), 1, i64({1, 1, 0, 0}, {2, 2}),
                               f64({1, 2, 3, 4}, {2, 2}));
  EXPECT_TRUE(all_close(sc, f64({0, 3, 7, 0}, {2, 2})));
  try {
    ops::embedding(w, i64({4}, {1}));
    FAIL() << "expected IndexError";
  } catch (const IndexError& e) {
    EXPECT_NE(std::string(e.what()).find("embedding"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("size 4"), std::string::npos);
  }
  EXPECT_THROW(ops::index_select(w, 0, i64({-1}, {1})), IndexError);
  EXPECT_THROW(ops::embedding(w, f64({1}, {1})), DTypeError);
}

TEST(Ops, ConcatStackSplitWhere) {
  Tensor a = f64({1, 2}, {1, 2}), b = f64({3, 4, 5, 6}, {2, 2});
  EXPECT_TRUE(all_close(ops::concat({a, b}, 0), f64({1, 2, 3, 4, 5, 6}, {3, 2})));
  EXPECT_TRUE(all_close(ops::concat({b, b.t()}, 1), f64({3, 4, 3, 5, 5, 6, 4, 6}, {2, 4})));
  EXPECT_EQ(ops::stack({a, a, a}, 1).shape(), (Shape{1, 3, 2}));
  auto parts = ops::split(ops::arange(0, 5, 1, DType::F64), 2, 0);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_TRUE(all_close(parts[2], f64({4}, {1})));
  EXPECT_TRUE(parts[1].shares_storage(parts[0]));
  EXPECT_THROW(ops::split(b, std::vector<int64_t>{1, 2}, 0), ShapeError);
  EXPECT_THROW(ops::concat({a, b}, 1), ShapeError);
  EXPECT_TRUE(all_close(ops::where(f64({1, 0}, {2}), f64({1, 2}, {2}), f64({9}, {1})), f64({1, 9}, {2})));
  EXPECT_TRUE(all_close(ops::masked_fill(b, f64({0, 1}, {2}), -1), f64({3, -1, 5, -1}, {2, 2})));
}

TEST(Ops, DropoutMaskStatistics) {
  Generator g(9);
  Tensor m = ops::dropout_mask({100000}, 0.25, DType::F64, g);
  const auto v = m.to_vector<double>();
  int64_t kept = 0;
  for (double x : v) {
    ASSERT_TRUE(x == 0.0 || std::abs(x - 1 / 0.75) < 1e-12);
    kept += x != 0.0;
  }
  EXPECT_NEAR(static_cast<double>(kept) / 100000, 0.75, 0.01);
  EXPECT_THROW(ops::dropout_mask({2}, 1.0), ValueError);
}

// The dropout stream of core/philox.h, element by element with the one-block philox4x32: element
// 64 g + 16 q + j is kept when word q of block offset + 16 g + j is >= floor(p 2^32). A length
// that is not a multiple of 64 checks the last, partial group; the generator advances by 16
// counters per group.
TEST(Ops, DropoutFollowsTheDocumentedStreamAndKeepsItsBits) {
  // f32 runs the CPU's AVX2 kernel on the full groups (core/cpu/philox_avx2.h) and the portable
  // one on the partial last group; f64 the portable one throughout.
  for (DType dt : {DType::F64, DType::F32}) {
    const int64_t n = 200;
    const double p = 0.3;
    Generator g(7);
    g.reserve(5);  // a nonzero offset
    const Tensor x = test::rand64({n}, -1, 1, 17).to(dt);
    const ops::DropoutResult r = ops::dropout(x.view({8, 25}), p, g);
    EXPECT_EQ(g.offset(), 5u + 16u * 4u);
    ASSERT_EQ(r.y.shape(), (Shape{8, 25}));
    ASSERT_EQ(r.mask.shape(), (Shape{4}));
    const auto xv = x.to(DType::F64).to_vector<double>(), yv = r.y.to(DType::F64).to_vector<double>();
    const auto bits = r.mask.to_vector<int64_t>();
    const uint32_t t = static_cast<uint32_t>(p * 4294967296.0);
    // The kept value is x times the scale, rounded in the tensor's dtype.
    auto scaled = [&](double v) {
      return dt == DType::F64 ? v * (1 / (1 - p))
                              : static_cast<double>(static_cast<float>(v) * static_cast<float>(1 / (1 - p)));
    };
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t grp = i / 64, q = (i % 64) / 16, j = i % 16;
      const bool keep = philox4x32(5 + 16 * grp + j, 0, 7)[static_cast<int>(q)] >= t;
      ASSERT_EQ(yv[i], keep ? scaled(xv[i]) : 0.0) << dtype_name(dt) << " element " << i;
      ASSERT_EQ((static_cast<uint64_t>(bits[grp]) >> (i % 64)) & 1, keep ? 1u : 0u) << "bit " << i;
      kept += keep;
    }
    EXPECT_GT(kept, 110);  // ~140 of 200 expected
    EXPECT_LT(kept, 170);
    // The backward reads the bits: the gradient passes (scaled) exactly where x did.
    const Tensor gy = test::rand64({8, 25}, -1, 1, 18).to(dt);
    const auto gv = gy.to(DType::F64).to_vector<double>();
    const auto gx = ops::dropout_backward(gy, r.mask, p).to(DType::F64).to_vector<double>();
    const auto bitv = [&](int64_t i) { return (static_cast<uint64_t>(bits[i / 64]) >> (i % 64)) & 1; };
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(gx[i], bitv(i) ? scaled(gv[i]) : 0.0) << dtype_name(dt) << " " << i;
    // dropout_mask is the same stream: the same generator state gives the same decisions.
    Generator g2(7);
    g2.reserve(5);
    const auto m = ops::dropout_mask({n}, p, DType::F64, g2).to_vector<double>();
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(m[i] != 0.0, bitv(i) == 1) << i;
    // Bad input: p out of range, a mask of the wrong size or dtype.
    EXPECT_THROW(ops::dropout(x, 1.0, g), ValueError);
    EXPECT_THROW(ops::dropout_backward(gy, ops::zeros({3}, DType::I64), p), ShapeError);
    EXPECT_THROW(ops::dropout_backward(gy, ops::zeros({4}), p), ShapeError);
  }
}

// linear = x @ w^T + bias with the bias fused into the GEMM: the same numbers as the two ops, for
// the folded (B, T, K) path, one row (the GEMV path), no bias, and a strided x (the fallback).
TEST(Ops, LinearMatchesMatmulPlusBias) {
  const Tensor w = test::rand64({5, 4}, -1, 1, 21), b = test::rand64({5}, -1, 1, 22);
  for (const Shape& s : {Shape{2, 3, 4}, Shape{1, 4}, Shape{4}, Shape{2, 4}}) {
    const Tensor x = test::rand64(s, -1, 1, 23);
    EXPECT_TRUE(all_close(ops::linear(x, w, b), ops::add(ops::matmul(x, w.t()), b), 1e-14, 1e-14))
        << shape_str(s);
    EXPECT_TRUE(all_close(ops::linear(x, w, Tensor()), ops::matmul(x, w.t()), 0, 0)) << shape_str(s);
  }
  const Tensor xt = test::rand64({4, 3}, -1, 1, 24).t();  // (3, 4), column-major
  EXPECT_TRUE(all_close(ops::linear(xt, w, b), ops::add(ops::matmul(xt, w.t()), b), 1e-14, 1e-14));
  EXPECT_THROW(ops::linear(test::rand64({2, 4}, -1, 1, 1), w, test::rand64({4}, -1, 1, 2)), ShapeError);
}

// One-row products go to GEMV (core/cpu/cpu_matmul.cpp): every layout of both operands, and an
// accumulate-free result, against the same product computed through a 3-row GEMM.
TEST(Ops, OneAndTwoRowProductsMatchTheGemmPath) {
  const Tensor a = test::rand64({3, 6}, -1, 1, 31);
  const Tensor bt = test::rand64({7, 6}, -1, 1, 32);  // b = bt^T: column-major
  const Tensor b = bt.t().contiguous();               // row-major (6, 7)
  const Tensor full = ops::matmul(a, b);
  for (int64_t m : {1, 2}) {
    const Tensor want = full.narrow(0, 0, m);
    EXPECT_TRUE(all_close(ops::matmul(a.narrow(0, 0, m), b), want, 1e-14, 1e-14))
        << m << " rows, b row-major";
    EXPECT_TRUE(all_close(ops::matmul(a.narrow(0, 0, m), bt.t()), want, 1e-14, 1e-14))
        << m << " rows, b col-major";
    const Tensor at = a.t().contiguous().t();  // column-major a
    EXPECT_TRUE(all_close(ops::matmul(at.narrow(0, 0, m), bt.t()), want, 1e-14, 1e-14))
        << m << " rows, a col-major";
  }
  // Batched one-row products (a decoder step over a batch of hypotheses).
  const Tensor q = test::rand64({4, 1, 6}, -1, 1, 33);
  const Tensor k = test::rand64({4, 6, 5}, -1, 1, 34);
  const Tensor got = ops::matmul(q, k);
  for (int64_t i = 0; i < 4; ++i)
    EXPECT_TRUE(all_close(got.select(0, i),
                          ops::matmul(q.select(0, i).expand({3, 6}), k.select(0, i)).narrow(0, 0, 1), 1e-14,
                          1e-14))
        << i;
}

TEST(Ops, ConvIdentityAndShapes) {
  // A 1x1 kernel of weight 1 copies each channel; a centered delta kernel with padding too.
  Tensor x = ops::arange(0, 2 * 3 * 5, 1, DType::F64).view({2, 3, 5});
  Tensor delta = ops::zeros({3, 1, 3}, DType::F64);
  delta.narrow(2, 1, 1).fill_(1);
  ops::Conv1dOptions dw;
  dw.padding = 1;
  dw.groups = 3;
  EXPECT_TRUE(all_close(ops::conv1d(x, delta, Tensor(), dw), x));
  ops::Conv1dOptions strided;
  strided.stride = 2;
  EXPECT_EQ(ops::conv1d(x, ops::ones({4, 3, 3}, DType::F64), Tensor(), strided).shape(), (Shape{2, 4, 2}));
  // Sum kernel: every output is the sum of its 2x2 window over both input channels.
  Tensor img = ops::ones({1, 2, 3, 3}, DType::F64);
  Tensor y = ops::conv2d(img, ops::ones({1, 2, 2, 2}, DType::F64), f64({0.5}, {1}));
  EXPECT_TRUE(all_close(y, ops::full({1, 1, 2, 2}, 8.5, DType::F64)));
  EXPECT_THROW(ops::conv2d(img, ops::ones({1, 3, 2, 2}, DType::F64), Tensor()), ShapeError);
  EXPECT_THROW(ops::conv2d(img, ops::ones({1, 2, 4, 4}, DType::F64), Tensor()), ShapeError);
  ops::Conv2dOptions bad;
  bad.groups = 3;
  EXPECT_THROW(ops::conv2d(img, ops::ones({3, 1, 1, 1}, DType::F64), Tensor(), bad), ShapeError);
}

// The direct depthwise kernels (groups = Cin = Cout) against the same convolution done densely
// (groups 1, a block-diagonal weight, through im2col + GEMM): forward, input and weight gradients,
// over strides, padding and dilation in both directions.
TEST(Ops, DepthwiseConvMatchesDenseConv) {
  const int64_t C = 3;
  for (const auto& [sh, sw, ph, pw, dh, dw] : std::vector<std::array<int64_t, 6>>{
           {1, 1, 0, 0, 1, 1}, {1, 1, 2, 3, 1, 1}, {2, 3, 1, 0, 1, 2}, {1, 2, 3, 2, 2, 1}}) {
    ops::Conv2dOptions o;
    o.stride = {sh, sw};
    o.padding = {ph, pw};
    o.dilation = {dh, dw};
    const Tensor x = test::rand64({2, C, 6, 9}, -1, 1, 301);
    const Tensor w = test::rand64({C, 1, 3, 4}, -1, 1, 302);
    Tensor dense = ops::zeros({C, C, 3, 4}, DType::F64);
    for (int64_t c = 0; c < C; ++c) dense.select(0, c).select(0, c).copy_(w.select(0, c).select(0, 0));
    ops::Conv2dOptions od = o, odw = o;
    odw.groups = C;
    const Tensor y = ops::conv2d(x, w, Tensor(), odw);
    const Tensor yd = ops::conv2d(x, dense, Tensor(), od);
    ASSERT_TRUE(all_close(y, yd, 1e-12, 1e-12)) << "stride " << sh << "," << sw << " pad " << ph << "," << pw;
    const Tensor gy = test::rand64(y.shape(), -1, 1, 303);
    const ops::ConvGrads g = ops::conv2d_backward(gy, x, w, odw, true, true, false);
    const ops::ConvGrads gd = ops::conv2d_backward(gy, x, dense, od, true, true, false);
    EXPECT_TRUE(all_close(g.x, gd.x, 1e-12, 1e-12));
    for (int64_t c = 0; c < C; ++c)
      EXPECT_TRUE(
          all_close(g.weight.select(0, c).select(0, 0), gd.weight.select(0, c).select(0, c), 1e-12, 1e-12));
  }
}

// A pointwise conv (1x1, stride 1, no padding) skips im2col: it must still be W @ x per image.
TEST(Ops, PointwiseConvIsAMatmul) {
  const Tensor x = test::rand64({3, 4, 7}, -1, 1, 321);
  const Tensor w = test::rand64({5, 4, 1}, -1, 1, 322);
  const Tensor y = ops::conv1d(x, w, Tensor());
  EXPECT_TRUE(all_close(y, ops::matmul(w.squeeze(2), x), 1e-12, 1e-12));
  const Tensor gy = test::rand64(y.shape(), -1, 1, 323);
  const ops::ConvGrads g = ops::conv1d_backward(gy, x, w, {}, true, true, true);
  EXPECT_TRUE(all_close(g.x, ops::matmul(w.squeeze(2).t(), gy), 1e-12, 1e-12));
  EXPECT_TRUE(
      all_close(g.weight.squeeze(2), ops::sum(ops::matmul(gy, x.transpose(1, 2)), {0}), 1e-12, 1e-12));
  EXPECT_TRUE(all_close(g.bias, ops::sum(gy, {0, 2}), 1e-12, 1e-12));
}

// The im2col path builds its column buffer for a chunk of images at a time; a batch large enough
// to need several chunks (with a last, shorter one) must equal the images done one by one.
TEST(Ops, ConvChunkedOverImagesMatchesPerImage) {
  const int64_t N = 60;  // 2*9*64*64 = 73.7k column entries per image: chunks of 56 and 4 images
  ops::Conv2dOptions o;
  o.padding = {1, 1};
  const Tensor x = test::rand64({N, 2, 64, 64}, -1, 1, 311).to(DType::F32);
  const Tensor w = test::rand64({5, 2, 3, 3}, -1, 1, 312).to(DType::F32);
  const Tensor y = ops::conv2d(x, w, Tensor(), o);
  const Tensor gy = test::rand64(y.shape(), -1, 1, 313).to(DType::F32);
  const ops::ConvGrads g = ops::conv2d_backward(gy, x, w, o, true, true, false);
  for (int64_t n : {int64_t{0}, int64_t{55}, int64_t{56}, N - 1}) {
    const Tensor xn = x.narrow(0, n, 1);
    EXPECT_TRUE(all_close(y.narrow(0, n, 1), ops::conv2d(xn, w, Tensor(), o), 1e-6, 1e-5)) << "image " << n;
    const ops::ConvGrads gn = ops::conv2d_backward(gy.narrow(0, n, 1), xn, w, o, true, false, false);
    EXPECT_TRUE(all_close(g.x.narrow(0, n, 1), gn.x, 1e-6, 1e-5)) << "image " << n;
  }
  // The weight gradient summed over four batches of 15 images (one chunk each).
  Tensor gw_sum = ops::zeros(w.shape());
  for (int64_t n0 = 0; n0 < N; n0 += 15)
    gw_sum = ops::add(
        gw_sum,
        ops::conv2d_backward(gy.narrow(0, n0, 15), x.narrow(0, n0, 15), w, o, false, true, false).weight);
  EXPECT_TRUE(all_close(g.weight, gw_sum, 1e-4, 1e-4));
}

// Large shapes take the OpenMP-parallel and strided paths; they must agree with the serial,
// contiguous path and with f64.
TEST(Ops, ParallelAndStridedPathsAgree) {
  Generator g(10);
  Tensor x = ops::uniform({512, 300}, -2, 2, DType::F32, g);
  Tensor xt = x.t().contiguous().t();  // same values, column-major
  Tensor row = ops::uniform({300}, -1, 1, DType::F32, g);
  // The strided path uses libm, the contiguous one Eigen's SIMD erf: equal to an ulp or two.
  EXPECT_TRUE(all_close(ops::gelu(xt), ops::gelu(x), 1e-6, 1e-6));
  EXPECT_TRUE(all_close(ops::mul(xt, row), ops::mul(x, row), 0, 0));
  EXPECT_TRUE(all_close(ops::tanh(x), ops::tanh(x.to(DType::F64)).to(DType::F32), 1e-6, 1e-6));
  EXPECT_TRUE(all_close(ops::sum(x, {0}), ops::sum(x.to(DType::F64), {0}).to(DType::F32), 1e-4, 1e-5));
  EXPECT_TRUE(all_close(ops::sum(x, {1}), ops::sum(x.to(DType::F64), {1}).to(DType::F32), 1e-4, 1e-5));
  EXPECT_TRUE(all_close(ops::sum(xt, {0}), ops::sum(x, {0}), 1e-5, 1e-6));
  EXPECT_TRUE(all_close(ops::amax(x, {0}), ops::amax(x.to(DType::F64), {0}).to(DType::F32), 0, 0));
  EXPECT_TRUE(all_close(ops::softmax(x, 0), ops::softmax(x.to(DType::F64), 0).to(DType::F32), 1e-7, 1e-5));
  auto ln32 = ops::layer_norm(x, 1, row, row, 1e-5);
  auto ln64 = ops::layer_norm(x.to(DType::F64), 1, row.to(DType::F64), row.to(DType::F64), 1e-5);
  EXPECT_TRUE(all_close(ln32.y, ln64.y.to(DType::F32), 1e-5, 1e-5));
  Tensor gy = ops::uniform({512, 300}, -1, 1, DType::F32, g);
  auto g32 = ops::layer_norm_backward(gy, x, 1, ln32.mean, ln32.rstd, row, true, true);
  auto g64 = ops::layer_norm_backward(gy.to(DType::F64), x.to(DType::F64), 1, ln64.mean, ln64.rstd,
                                      row.to(DType::F64), true, true);
  EXPECT_TRUE(all_close(g32.x, g64.x.to(DType::F32), 1e-5, 1e-4));
  EXPECT_TRUE(all_close(g32.weight, g64.weight.to(DType::F32), 1e-4, 1e-5));
  EXPECT_TRUE(all_close(g32.bias, g64.bias.to(DType::F32), 1e-4, 1e-5));
  // A draw big enough to run on several threads gives the same leading numbers as a small one.
  Generator g1(5), g2(5);
  EXPECT_TRUE(all_close(ops::normal({70000}, 0, 1, DType::F32, g1).narrow(0, 0, 1000),
                        ops::normal({1000}, 0, 1, DType::F32, g2), 0, 0));
}

TEST(Ops, MismatchErrorsNameOpAndOperands) {
  try {
    ops::add(ops::zeros({2, 3}), ops::zeros({4}));
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("add"), std::string::npos) << m;
    EXPECT_NE(m.find("(2, 3)"), std::string::npos) << m;
    EXPECT_NE(m.find("(4,)"), std::string::npos) << m;
  }
  try {
    ops::mul(ops::zeros({2}), ops::zeros({2}, DType::F64));
    FAIL() << "expected DTypeError";
  } catch (const DTypeError& e) {
    EXPECT_NE(std::string(e.what()).find("mul"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("f64"), std::string::npos);
  }
  EXPECT_THROW(ops::add(Tensor(), ops::zeros({1})), ValueError);
}

}  // namespace
}  // namespace cw
