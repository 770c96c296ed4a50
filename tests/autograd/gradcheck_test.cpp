// f64 central-difference gradient checks (full Jacobian) of every differentiable op, on tiny
// shapes, including broadcasting and non-contiguous inputs. Inputs avoid kinks (relu/abs at 0,
// ties in max) because the derivative is not defined there.
#include "support/check.h"

namespace cw {
namespace {

using test::gradcheck;
using test::rand64;
using V = std::vector<Variable>;

// A non-contiguous version of x: the same values read through a transposed view.
Variable noncontig(const Variable& x) {
  // x is created transposed by the caller (shape (b, a)); transposing back gives (a, b) with
  // strides (1, a).
  return ag::transpose(x, 0, 1);
}

TEST(GradCheck, Unary) {
  const Tensor x = rand64({3, 4}, -2, 2, 11);
  const Tensor pos = rand64({3, 4}, 0.2, 2, 12);
  struct Case {
    const char* name;
    Tensor input;
    test::Fn fn;
  };
  const std::vector<Case> cases = {
      {"neg", x, [](const V& v) { return ag::neg(v[0]); }},
      {"exp", x, [](const V& v) { return ag::exp(v[0]); }},
      {"log", pos, [](const V& v) { return ag::log(v[0]); }},
      {"sqrt", pos, [](const V& v) { return ag::sqrt(v[0]); }},
      {"rsqrt", pos, [](const V& v) { return ag::rsqrt(v[0]); }},
      {"tanh", x, [](const V& v) { return ag::tanh(v[0]); }},
      {"sigmoid", x, [](const V& v) { return ag::sigmoid(v[0]); }},
      {"relu", x, [](const V& v) { return ag::relu(v[0]); }},
      {"gelu", x, [](const V& v) { return ag::gelu(v[0]); }},
      {"gelu_tanh", x, [](const V& v) { return ag::gelu(v[0], ops::GeluApprox::Tanh); }},
      {"silu", x, [](const V& v) { return ag::silu(v[0]); }},
      {"abs", x, [](const V& v) { return ag::abs(v[0]); }},
      {"pow2", x, [](const V& v) { return ag::pow(v[0], 2.0); }},
      {"pow3", x, [](const V& v) { return ag::pow(v[0], 3.0); }},
      {"pow0.5", pos, [](const V& v) { return ag::pow(v[0], 0.5); }},
      {"pow-1.5", pos, [](const V& v) { return ag::pow(v[0], -1.5); }},
      {"tanh_noncontig", x.t().contiguous(), [](const V& v) { return ag::tanh(noncontig(v[0])); }},
  };
  for (const Case& c : cases) EXPECT_TRUE(gradcheck(c.fn, {c.input})) << c.name;
}

TEST(GradCheck, BinaryBroadcasting) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{2, 3}, {2, 3}}, {{2, 3, 4}, {3, 1}}, {{1, 4}, {3, 1}}, {{3}, {}}, {{}, {2, 2}}};
  for (const auto& [sa, sb] : shapes) {
    const Tensor a = rand64(sa, -2, 2, 21), b = rand64(sb, -2, 2, 22);
    const Tensor bpos = rand64(sb, 0.5, 2, 23);
    const std::string where = shape_str(sa) + " with " + shape_str(sb);
    EXPECT_TRUE(gradcheck([](const V& v) { return v[0] + v[1]; }, {a, b})) << "add " << where;
    EXPECT_TRUE(gradcheck([](const V& v) { return v[0] - v[1]; }, {a, b})) << "sub " << where;
    EXPECT_TRUE(gradcheck([](const V& v) { return v[0] * v[1]; }, {a, b})) << "mul " << where;
    EXPECT_TRUE(gradcheck([](const V& v) { return v[0] / v[1]; }, {a, bpos})) << "div " << where;
    // Random inputs from different seeds never tie exactly.
    EXPECT_TRUE(gradcheck([](const V& v) { return ag::maximum(v[0], v[1]); }, {a, b})) << "max " << where;
    EXPECT_TRUE(gradcheck([](const V& v) { return ag::minimum(v[0], v[1]); }, {a, b})) << "min " << where;
  }
}

TEST(GradCheck, BinaryNonContiguous) {
  const Tensor at = rand64({4, 3}, -1, 1, 24), b = rand64({3, 4}, 0.5, 2, 25);
  EXPECT_TRUE(gradcheck([](const V& v) { return noncontig(v[0]) * v[1]; }, {at, b}));
  const Tensor pos_t = rand64({4, 3}, 0.5, 2, 26);
  EXPECT_TRUE(gradcheck([](const V& v) { return v[1] / noncontig(v[0]); }, {pos_t, b}));
}

TEST(GradCheck, ScalarVariants) {
  const Tensor x = rand64({2, 3}, 0.5, 2, 31);
  EXPECT_TRUE(gradcheck([](const V& v) { return v[0] + 2.5; }, {x}));
  EXPECT_TRUE(gradcheck([](const V& v) { return v[0] - 2.5; }, {x}));
  EXPECT_TRUE(gradcheck([](const V& v) { return 2.5 - v[0]; }, {x}));
  EXPECT_TRUE(gradcheck([](const V& v) { return v[0] * -3.0; }, {x}));
  EXPECT_TRUE(gradcheck([](const V& v) { return v[0] / 4.0; }, {x}));
  EXPECT_TRUE(gradcheck([](const V& v) { return 4.0 / v[0]; }, {x}));
}

TEST(GradCheck, WhereAndMaskedFill) {
  const Tensor a = rand64({2, 3}, -1, 1, 32), b = rand64({3}, -1, 1, 33);
  const Tensor cond = test::f64({1, 0, 1, 0, 0, 1}, {2, 3});
  EXPECT_TRUE(gradcheck([&](const V& v) { return ag::where(cond, v[0], v[1]); }, {a, b}));
  const Tensor mask = test::f64({0, 1, 0}, {1, 3});
  EXPECT_TRUE(gradcheck([&](const V& v) { return ag::masked_fill(v[0], mask, -1e9); }, {a}));
}

TEST(GradCheck, Reductions) {
  const Tensor x = rand64({2, 3, 4}, -2, 2, 41);
  const std::vector<std::vector<int64_t>> dim_sets = {{}, {0}, {1}, {-1}, {0, 2}, {0, 1, 2}};
  for (const auto& dims : dim_sets)
    for (bool keep : {false, true}) {
      EXPECT_TRUE(gradcheck([&](const V& v) { return ag::sum(v[0], dims, keep); }, {x})) << "sum";
      EXPECT_TRUE(gradcheck([&](const V& v) { return ag::mean(v[0], dims, keep); }, {x})) << "mean";
      EXPECT_TRUE(gradcheck([&](const V& v) { return ag::amax(v[0], dims, keep); }, {x})) << "amax";
      EXPECT_TRUE(gradcheck([&](const V& v) { return ag::amin(v[0], dims, keep); }, {x})) << "amin";
      for (int64_t c : {0, 1})
        EXPECT_TRUE(gradcheck([&](const V& v) { return ag::var(v[0], dims, c, keep); }, {x})) << "var";
    }
  // Reductions of a non-contiguous input.
  const Tensor xt = rand64({4, 3}, -1, 1, 42);
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::sum(noncontig(v[0]), {1}); }, {xt}));
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::var(noncontig(v[0]), {0}); }, {xt}));
}

TEST(GradCheck, AmaxSharesGradientAmongTies) {
  Variable x(test::f64({1, 3, 3, 2}, {4}), true);
  ag::amax(x).backward();
  EXPECT_TRUE(test::all_close(x.grad(), test::f64({0, 0.5, 0.5, 0}, {4})));
}

TEST(GradCheck, Matmul) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 4}, {4, 2}},           // plain
      {{2, 3, 4}, {4, 5}},        // (B, T, C) @ (C, N): the folded single-GEMM path
      {{2, 1, 3, 4}, {5, 4, 2}},  // broadcast batch dims
      {{4}, {4, 3}},              // vector @ matrix
      {{3, 4}, {4}},              // matrix @ vector
      {{4}, {4}},                 // dot product
      {{2, 3, 4}, {2, 4, 3}},     // batched
  };
  for (const auto& [sa, sb] : shapes)
    EXPECT_TRUE(gradcheck([](const V& v) { return ag::matmul(v[0], v[1]); },
                          {rand64(sa, -1, 1, 51), rand64(sb, -1, 1, 52)}))
        << shape_str(sa) << " @ " << shape_str(sb);
  // Transposed operands, read in place by the kernel: x @ W^T, and A^T @ B.
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::matmul(v[0], ag::transpose(v[1], 0, 1)); },
                        {rand64({2, 3, 4}, -1, 1, 53), rand64({5, 4}, -1, 1, 54)}));
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::matmul(ag::transpose(v[0], -1, -2), v[1]); },
                        {rand64({2, 4, 3}, -1, 1, 55), rand64({2, 4, 2}, -1, 1, 56)}));
}

TEST(GradCheck, SoftmaxAndLogSoftmax) {
  const Tensor x = rand64({2, 3, 4}, -3, 3, 61);
  for (int64_t dim : {0, 1, 2, -1}) {
    EXPECT_TRUE(gradcheck([&](const V& v) { return ag::softmax(v[0], dim); }, {x})) << "softmax dim " << dim;
    EXPECT_TRUE(gradcheck([&](const V& v) { return ag::log_softmax(v[0], dim); }, {x}))
        << "log_softmax " << dim;
  }
  EXPECT_TRUE(
      gradcheck([](const V& v) { return ag::softmax(noncontig(v[0]), 1); }, {rand64({4, 3}, -1, 1, 62)}));
}

TEST(GradCheck, LayerNorm) {
  const Tensor x = rand64({2, 3, 4}, -2, 2, 71);
  const Tensor w1 = rand64({4}, 0.5, 1.5, 72), b1 = rand64({4}, -0.5, 0.5, 73);
  const Tensor w2 = rand64({3, 4}, 0.5, 1.5, 74), b2 = rand64({3, 4}, -0.5, 0.5, 75);
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::layer_norm(v[0], 1, v[1], v[2]); }, {x, w1, b1}));
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::layer_norm(v[0], 2, v[1], v[2], 1e-12); }, {x, w2, b2}));
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::layer_norm(v[0], 1, Variable(), Variable()); }, {x}));
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::layer_norm(noncontig(v[0]), 1, v[1], Variable()); },
                        {rand64({4, 3}, -1, 1, 76), rand64({4}, 0.5, 1.5, 77)}));
}

TEST(GradCheck, Indexing) {
  const Tensor w = rand64({5, 3}, -1, 1, 81);
  const Tensor ids = test::i64({1, 4, 1, 0, 2, 1}, {2, 3});  // repeated ids accumulate
  EXPECT_TRUE(gradcheck([&](const V& v) { return ag::embedding(v[0], ids); }, {w}));
  const Tensor idx = test::i64({2, 0, 2}, {3});
  EXPECT_TRUE(gradcheck([&](const V& v) { return ag::index_select(v[0], 0, idx); }, {w}));
  EXPECT_TRUE(gradcheck([&](const V& v) { return ag::index_select(v[0], 1, idx); }, {w}));
  const Tensor gidx = test::i64({0, 2, 1, 1, 0, 0}, {2, 3});
  EXPECT_TRUE(gradcheck([&](const V& v) { return ag::gather(v[0], 1, gidx); }, {rand64({2, 3}, -1, 1, 82)}));
  const Tensor gidx0 = test::i64({4, 0, 1, 4, 3, 3}, {2, 3});
  EXPECT_TRUE(gradcheck([&](const V& v) { return ag::gather(v[0], 0, gidx0); }, {w}));
}

TEST(GradCheck, JoinAndSplit) {
  const Tensor a = rand64({2, 3}, -1, 1, 91), b = rand64({2, 1}, -1, 1, 92), c = rand64({2, 3}, -1, 1, 93);
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::concat({v[0], v[1], v[2]}, 1); }, {a, b, c}));
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::stack({v[0], v[1]}, 0); }, {a, c}));
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::stack({v[0], v[1]}, 2); }, {a, c}));
  EXPECT_TRUE(gradcheck(
      [](const V& v) {
        auto parts = ag::split(v[0], 2, 1);  // widths 2, 2, 1
        return parts[0] * parts[1] + ag::sum(parts[2]);
      },
      {rand64({3, 5}, -1, 1, 94)}));
}

TEST(GradCheck, Views) {
  const Tensor x = rand64({2, 3, 4}, -1, 1, 101);
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::reshape(v[0], {4, 6}) * 2.0; }, {x}));
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::transpose(v[0], 0, 2) * 2.0; }, {x}));
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::permute(v[0], {1, 2, 0}) * 2.0; }, {x}));
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::narrow(v[0], 2, 1, 2) * 2.0; }, {x}));
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::slice(v[0], 2, 0, 4, 3) * 2.0; }, {x}));
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::select(v[0], 1, -1) * 2.0; }, {x}));
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::flatten(v[0], 1) * 2.0; }, {x}));
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::contiguous(ag::transpose(v[0], 0, 1)) * 2.0; }, {x}));
  EXPECT_TRUE(gradcheck(
      [](const V& v) {
        return ag::expand(v[0], {2, 3, 4}) * 2.0;
      },
      {rand64({3, 1}, -1, 1, 102)}));
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::squeeze(ag::unsqueeze(v[0], 1), 1) * 2.0; }, {x}));
  // A reshape that must copy (non-contiguous source).
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::reshape(noncontig(v[0]), {-1}) * 2.0; },
                        {rand64({4, 3}, -1, 1, 103)}));
}

TEST(GradCheck, Linear) {
  // (B, T, K) with bias (the fused path), one row (GEMV), 1-d x, and no bias.
  const Tensor w = rand64({3, 4}, -1, 1, 61), b = rand64({3}, -1, 1, 62);
  for (const Shape& s : {Shape{2, 5, 4}, Shape{1, 4}, Shape{4}}) {
    EXPECT_TRUE(
        gradcheck([](const V& v) { return ag::linear(v[0], v[1], v[2]); }, {rand64(s, -1, 1, 63), w, b}))
        << shape_str(s);
  }
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::linear(v[0], v[1], Variable()); },
                        {rand64({2, 4}, -1, 1, 64), w}));
}

TEST(GradCheck, Dropout) {
  // A fresh generator with the same seed in every evaluation, so the mask is fixed.
  auto fn = [](const V& v) {
    Generator g(5);
    return ag::dropout(v[0], 0.4, true, g);
  };
  EXPECT_TRUE(gradcheck(fn, {rand64({3, 5}, -1, 1, 111)}));
}

TEST(GradCheck, Conv1d) {
  struct Case {
    int64_t cin, cout, k;
    ops::Conv1dOptions o;
  };
  const std::vector<Case> cases = {
      {2, 3, 3, {1, 0, 1, 1}},  // plain
      {2, 3, 3, {2, 1, 1, 1}},  // stride 2, padding 1
      {2, 2, 2, {1, 2, 2, 1}},  // dilation 2
      {4, 2, 3, {1, 1, 1, 2}},  // groups 2
      {3, 3, 5, {1, 2, 1, 3}},  // depthwise, "same" padding
      {3, 2, 1, {1, 0, 1, 1}},  // pointwise (no im2col)
  };
  for (const Case& c : cases) {
    const Tensor x = rand64({2, c.cin, 7}, -1, 1, 121);
    const Tensor w = rand64({c.cout, c.cin / c.o.groups, c.k}, -1, 1, 122);
    const Tensor b = rand64({c.cout}, -1, 1, 123);
    EXPECT_TRUE(gradcheck([&](const V& v) { return ag::conv1d(v[0], v[1], v[2], c.o); }, {x, w, b}))
        << "stride " << c.o.stride << " pad " << c.o.padding << " dil " << c.o.dilation << " groups "
        << c.o.groups;
  }
  EXPECT_TRUE(gradcheck([](const V& v) { return ag::conv1d(v[0], v[1], Variable()); },
                        {rand64({1, 2, 5}, -1, 1, 124), rand64({2, 2, 2}, -1, 1, 125)}));
}

TEST(GradCheck, Conv2d) {
  ops::Conv2dOptions strided;
  strided.stride = {2, 1};
  strided.padding = {1, 1};
  ops::Conv2dOptions grouped;
  grouped.padding = {0, 1};
  grouped.groups = 2;
  grouped.dilation = {1, 2};
  for (const auto& [options, cin] :
       std::vector<std::pair<ops::Conv2dOptions, int64_t>>{{{}, 2}, {strided, 2}, {grouped, 2}}) {
    const ops::Conv2dOptions o =
        options;  // a lambda may not capture a structured binding before C++20's P1091 (clang 14)
    const Tensor x = rand64({2, cin, 5, 4}, -1, 1, 131);
    const Tensor w = rand64({4, cin / o.groups, 3, 2}, -1, 1, 132);
    const Tensor b = rand64({4}, -1, 1, 133);
    EXPECT_TRUE(gradcheck([&](const V& v) { return ag::conv2d(v[0], v[1], v[2], o); }, {x, w, b}))
        << "groups " << o.groups << " stride " << o.stride[0];
  }
  // Depthwise (groups = Cin = Cout) takes the direct kernels, not im2col.
  ops::Conv2dOptions depthwise;
  depthwise.groups = 3;
  depthwise.stride = {1, 2};
  depthwise.padding = {1, 2};
  depthwise.dilation = {2, 1};
  EXPECT_TRUE(gradcheck(
      [&](const V& v) { return ag::conv2d(v[0], v[1], v[2], depthwise); },
      {rand64({2, 3, 5, 6}, -1, 1, 134), rand64({3, 1, 2, 3}, -1, 1, 135), rand64({3}, -1, 1, 136)}));
}

}  // namespace
}  // namespace cw
