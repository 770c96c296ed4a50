// The Conformer's nn additions: Conv1d (strided, dilated, grouped, depthwise), Conv2d, GLU, SiLU
// and BatchNorm1d (with masked statistics). PyTorch 1.13 parity from tests/fixtures/
// conformer_layers.txt (made by tools/make_conformer_fixture.py), f64 gradient checks of every
// module, and the properties the Conformer relies on: padding never reaches masked statistics,
// running statistics as PyTorch updates them, output sizes, initialization, and bad input.
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>

#include "nn/activations.h"
#include "nn/batch_norm.h"
#include "nn/conv.h"
#include "support/check.h"
#include "support/fixture.h"
#include "support/module_parity.h"

namespace cw {
namespace {

using test::Fixture;
using V = std::vector<Variable>;
using test::all_close;
using test::rand64;

// Both sides compute in f64 and differ by summation order only (worst seen:
// 1.8e-15); a wrong term would be O(0.1).
constexpr double kTol = 1e-10;

using test::check_module_case;
using test::with_prefix;
const Tensor& get(const Fixture& fx, const std::string& name) { return test::fixture_get(fx, name); }

template <class Forward>
void check_case(const Fixture& fx, const std::string& c, nn::Module& m, Forward forward) {
  check_module_case(fx, c, m, forward, kTol);
}

TEST(ConvReference, Conv1dStridedDilatedGroupedDepthwisePointwise) {
  const Fixture fx = test::load_fixture("conformer_layers.txt");
  for (const std::string c : {"conv1d", "conv1d_depthwise", "conv1d_pointwise"}) {
    const auto k = get(fx, c + ".config").to_vector<int64_t>();  // in, out, kernel, stride, pad, dil, groups
    nn::Conv1d conv(k[0], k[1], k[2], {k[3], k[4], k[5], k[6]}, true, DType::F64);
    check_case(fx, c, conv, [&](const Variable& x) { return conv.forward(x); });
  }
}

TEST(ConvReference, Conv2d) {
  const Fixture fx = test::load_fixture("conformer_layers.txt");
  for (const std::string c : {"conv2d", "conv2d_subsample"}) {
    const auto k = get(fx, c + ".config").to_vector<int64_t>();  // in, out, kh, kw, sh, sw, ph, pw, dh, dw, g
    ops::Conv2dOptions o{{k[4], k[5]}, {k[6], k[7]}, {k[8], k[9]}, k[10]};
    nn::Conv2d conv(k[0], k[1], {k[2], k[3]}, o, true, DType::F64);
    check_case(fx, c, conv, [&](const Variable& x) { return conv.forward(x); });
  }
}

TEST(ConvReference, Glu) {
  const Fixture fx = test::load_fixture("conformer_layers.txt");
  nn::GLU glu(1);
  check_case(fx, "glu", glu, [&](const Variable& x) { return glu.forward(x); });
}

TEST(BatchNormReference, TrainOn3dAnd2dInputAndEval) {
  const Fixture fx = test::load_fixture("conformer_layers.txt");
  for (const std::string c : {"bn_train_3d", "bn_train_2d", "bn_eval"}) {
    nn::BatchNorm1d bn(get(fx, c + ".config").to_vector<int64_t>()[0], 1e-5, 0.1, true, DType::F64);
    bn.train(c != "bn_eval");
    check_case(fx, c, bn, [&](const Variable& x) { return bn.forward(x); });
  }
}

// Masked statistics against nn.BatchNorm1d run on the real frames laid end to end: padded
// positions carry garbage of magnitude 100 and must not move a single digit.
TEST(BatchNormReference, MaskedStatisticsEqualTorchOnTheRealFramesAlone) {
  const Fixture fx = test::load_fixture("conformer_layers.txt");
  nn::BatchNorm1d bn(4, 1e-5, 0.1, true, DType::F64);
  const Tensor& mask = get(fx, "bn_masked.mask");  // (B, T) 1 at padding
  const Tensor real = ops::eq(mask, 0.0).to(DType::F64).unsqueeze(1);
  check_case(fx, "bn_masked", bn, [&](const Variable& x) { return bn.forward(x, mask) * Variable(real); });
  EXPECT_EQ(bn.num_batches_tracked().item(), 8);  // 7 in the fixture, plus this step
}

TEST(ConvNormGrad, GluAndSilu) {
  EXPECT_TRUE(test::gradcheck([](const V& v) { return nn::glu(v[0], 1); }, {rand64({2, 6, 3})}));
  EXPECT_TRUE(test::gradcheck([](const V& v) { return nn::glu(v[0]); }, {rand64({3, 4}, -2, 2, 5)}));
  nn::SiLU silu;
  EXPECT_TRUE(test::gradcheck([&](const V& v) { return silu.forward(v[0]); }, {rand64({3, 5}, -3, 3)}));
  // glu's value: a * sigmoid(b).
  const Tensor x = test::f64({1, 2, 0, -1}, {1, 4});
  const double s0 = 1 / (1 + std::exp(0.0)), s1 = 1 / (1 + std::exp(1.0));
  EXPECT_TRUE(all_close(nn::glu(Variable(x)).data(), test::f64({1 * s0, 2 * s1}, {1, 2}), 1e-15, 0));
}

// Gradient of the output w.r.t. the input and, separately, every parameter.
template <class M>
void gradcheck_module(M& m, const Tensor& x) {
  EXPECT_TRUE(test::gradcheck([&](const V& v) { return m.forward(v[0]); }, {x}));
  const Variable cx(x);
  EXPECT_TRUE(test::gradcheck_params([&] { return m.forward(cx); }, m.parameters()));
}

TEST(ConvNormGrad, Conv1dAndDepthwiseConv1d) {
  manual_seed(11);
  nn::Conv1d strided(4, 6, 3, {2, 1, 2, 2}, true, DType::F64);
  gradcheck_module(strided, rand64({2, 4, 9}));
  nn::Conv1d depthwise(3, 3, 5, {1, nn::same_padding(5), 1, 3}, true, DType::F64);
  gradcheck_module(depthwise, rand64({2, 3, 7}));
  EXPECT_EQ(depthwise.forward(Variable(rand64({2, 3, 7}))).shape(), (Shape{2, 3, 7}));  // 'same'
}

TEST(ConvNormGrad, Conv2d) {
  manual_seed(12);
  nn::Conv2d conv(2, 4, {3, 2}, {{2, 1}, {1, 0}, {1, 2}, 2}, true, DType::F64);
  gradcheck_module(conv, rand64({2, 2, 5, 6}));
  nn::Conv2d subsample(1, 2, {3, 3}, {{2, 2}, {0, 0}, {1, 1}, 1}, false, DType::F64);
  gradcheck_module(subsample, rand64({1, 1, 7, 6}));
}

TEST(ConvNormGrad, BatchNormTrainMaskedAndEval) {
  nn::BatchNorm1d bn(3, 1e-5, 0.1, true, DType::F64);
  {
    NoGradGuard ng;  // non-trivial weight, bias and running statistics
    bn.weight.set_data(test::f64({0.5, -1.2, 2.0}, {3}));
    bn.bias.set_data(test::f64({0.1, 0.0, -0.3}, {3}));
  }
  gradcheck_module(bn, rand64({2, 3, 4}, -1, 2));
  gradcheck_module(bn, rand64({5, 3}, -1, 2, 3));
  const Tensor mask = test::i64({0, 0, 0, 0, 0, 0, 1, 1}, {2, 4});
  const Tensor x = rand64({2, 3, 4}, -1, 2, 4);
  EXPECT_TRUE(test::gradcheck([&](const V& v) { return bn.forward(v[0], mask); }, {x}));
  EXPECT_TRUE(test::gradcheck_params([&] { return bn.forward(Variable(x), mask); }, bn.parameters()));
  bn.eval();
  gradcheck_module(bn, rand64({2, 3, 4}, -1, 2, 5));
}

// Synchronized statistics: a replica sum that doubles its argument stands for two replicas
// holding the same batch (the forward sums and the backward's gradient sums both double), which
// must equal one process holding the batch twice: the same outputs, running statistics and
// input gradient (the first half's), and half the parameter gradients (the trainer sums those
// over replicas). With and without a mask and affine part.
TEST(BatchNormReplicas, TwoEqualReplicasEqualTheDoubledBatch) {
  const Tensor mask = test::i64({0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1}, {2, 6});
  for (bool affine : {true, false}) {
    for (bool masked : {false, true}) {
      SCOPED_TRACE(std::string(affine ? "affine" : "plain") + (masked ? ", masked" : ""));
      nn::BatchNorm1d replica(4, 1e-5, 0.1, affine, DType::F64), whole(4, 1e-5, 0.1, affine, DType::F64);
      if (affine) {
        NoGradGuard ng;
        for (nn::BatchNorm1d* bn : {&replica, &whole}) {
          bn->weight.set_data(test::f64({0.5, -1.2, 2.0, 0.7}, {4}));
          bn->bias.set_data(test::f64({0.1, 0.0, -0.3, 0.2}, {4}));
        }
      }
      const Tensor x = rand64({2, 4, 6}, -1, 2, 31);
      const Tensor gy = rand64({2, 4, 6}, -1, 1, 32);

      nn::set_batch_norm_replica_sum([](const Variable& v) { return v * 2.0; });
      Variable xr(x, /*requires_grad=*/true);
      const Variable yr = replica.forward(xr, masked ? mask : Tensor());
      ag::sum(yr * Variable(gy)).backward();
      nn::set_batch_norm_replica_sum({});

      Variable xw(ops::concat({x, x}, 0), /*requires_grad=*/true);
      const Variable yw = whole.forward(xw, masked ? ops::concat({mask, mask}, 0) : Tensor());
      ag::sum(yw * Variable(ops::concat({gy, gy}, 0))).backward();

      constexpr double tol = 1e-13;
      EXPECT_TRUE(all_close(yr.data(), yw.data().narrow(0, 0, 2), tol, tol));
      EXPECT_TRUE(all_close(xr.grad(), xw.grad().narrow(0, 0, 2), tol, tol));
      EXPECT_TRUE(all_close(replica.running_mean(), whole.running_mean(), tol, tol));
      EXPECT_TRUE(all_close(replica.running_var(), whole.running_var(), tol, tol));
      if (affine) {
        EXPECT_TRUE(all_close(ops::mul(replica.weight.grad(), 2.0), whole.weight.grad(), tol, tol));
        EXPECT_TRUE(all_close(ops::mul(replica.bias.grad(), 2.0), whole.bias.grad(), tol, tol));
      }
    }
  }
}

// The masked statistics ignore padding entirely: the same real frames with more padding, or
// other garbage in it, give the same outputs on real frames and the same running statistics.
TEST(BatchNormMasked, PaddingNeverReachesTheStatistics) {
  const int64_t C = 3;
  const Tensor real_frames = rand64({2, C, 5}, -1, 2, 21);  // second sequence: 3 real frames
  auto padded = [&](int64_t T, uint64_t seed) {
    Tensor x = ops::mul(rand64({2, C, T}, -1, 1, seed), 1e3);  // garbage everywhere
    x.narrow(2, 0, 5).select(0, 0).copy_(real_frames.select(0, 0));
    x.narrow(2, 0, 3).select(0, 1).copy_(real_frames.select(0, 1).narrow(1, 0, 3));
    std::vector<int64_t> m(2 * T, 0);
    for (int64_t t = 5; t < T; ++t) m[t] = 1;
    for (int64_t t = 3; t < T; ++t) m[T + t] = 1;
    return std::make_pair(x, test::i64(m, {2, T}));
  };
  nn::BatchNorm1d a(C, 1e-5, 0.1, true, DType::F64), b(C, 1e-5, 0.1, true, DType::F64);
  const auto [xa, ma] = padded(5, 1);
  const auto [xb, mb] = padded(9, 2);
  const Tensor ya = a.forward(Variable(xa), ma).data(), yb = b.forward(Variable(xb), mb).data();
  EXPECT_TRUE(all_close(ya.select(0, 0), yb.select(0, 0).narrow(1, 0, 5), 1e-13, 0));
  EXPECT_TRUE(all_close(ya.select(0, 1).narrow(1, 0, 3), yb.select(0, 1).narrow(1, 0, 3), 1e-13, 0));
  EXPECT_TRUE(all_close(a.running_mean(), b.running_mean(), 1e-13, 0));
  EXPECT_TRUE(all_close(a.running_var(), b.running_var(), 1e-13, 0));
}

TEST(BatchNorm, BuffersNamesAndRunningStatistics) {
  nn::BatchNorm1d bn(2, 1e-5, 0.1);
  const auto state = bn.state_dict();
  for (const char* name : {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"})
    EXPECT_EQ(state.count(name), 1u) << name;
  EXPECT_EQ(bn.named_parameters().size(), 2u);
  EXPECT_EQ(bn.num_batches_tracked().dtype(), DType::I64);
  EXPECT_EQ(bn.num_batches_tracked().dim(), 0);
  // Channel 0 sees {1, 2, 3, 6}: mean 3, biased var 3.5, unbiased 14/3; channel 1 sees {0, 0, 0, 4}:
  // mean 1, unbiased var 4.
  const Tensor x = test::f32({1, 2, 0, 0, 3, 6, 0, 4}, {2, 2, 2});
  const Tensor y = bn.forward(Variable(x)).data();
  EXPECT_NEAR(y.to_vector<double>()[0], (1 - 3) / std::sqrt(3.5 + 1e-5), 1e-6);
  EXPECT_TRUE(all_close(bn.running_mean(), test::f32({0.3f, 0.1f}, {2}), 1e-7, 0));
  EXPECT_TRUE(
      all_close(bn.running_var(), test::f32({0.9f + 0.1f * 14 / 3.0f, 0.9f + 0.1f * 4}, {2}), 1e-6, 0));
  EXPECT_EQ(bn.num_batches_tracked().item(), 1);
  // Handles taken before the step see it (buffers are updated in place, as PyTorch's).
  EXPECT_EQ(state.at("num_batches_tracked").item(), 1);
  // Eval normalizes with the running statistics and leaves them alone.
  bn.eval();
  const Tensor ye = bn.forward(Variable(x)).data();
  EXPECT_NEAR(ye.to_vector<double>()[0], (1 - 0.3) / std::sqrt(0.9 + 0.1 * 14 / 3.0 + 1e-5), 1e-5);
  EXPECT_EQ(bn.num_batches_tracked().item(), 1);
  // Integer counters keep their type through a dtype move.
  bn.to(DType::F64);
  EXPECT_EQ(bn.running_mean().dtype(), DType::F64);
  EXPECT_EQ(bn.num_batches_tracked().dtype(), DType::I64);
}

TEST(Conv, OutputSizesMatchTheOutputs) {
  for (const auto& [L, k, s, p, d] : std::vector<std::array<int64_t, 5>>{
           {9, 3, 2, 1, 2}, {10, 3, 2, 0, 1}, {7, 31, 1, 15, 1}, {5, 1, 1, 0, 1}, {12, 4, 3, 2, 2}}) {
    nn::Conv1d conv(2, 2, k, {s, p, d, 1});
    EXPECT_EQ(conv.forward(Variable(ops::zeros({1, 2, L}))).size(2), conv.output_length(L))
        << L << " " << k << " " << s << " " << p << " " << d;
  }
  nn::Conv2d conv(1, 2, {3, 3}, {{2, 2}, {0, 0}, {1, 1}, 1});
  for (int64_t n : {3, 4, 7, 8, 80}) {
    const auto hw = conv.output_size(n, n + 1);
    EXPECT_EQ(conv.forward(Variable(ops::zeros({1, 1, n, n + 1}))).shape(), (Shape{1, 2, hw[0], hw[1]}));
    EXPECT_EQ(hw[0], (n - 1) / 2);  // the subsampling formula: floor((L - 3) / 2) + 1
  }
  EXPECT_EQ(nn::conv_output_size(2, 3, 2, 0, 1), 0);  // too short: an empty output, not a negative one
  EXPECT_EQ(nn::same_padding(31), 15);
  EXPECT_EQ(nn::same_padding(3, 4), 4);
  EXPECT_THROW(nn::same_padding(4), ValueError);
}

TEST(Conv, InitializationIsPyTorchsDefault) {
  // U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = Cin/groups * prod(kernel), weight and bias.
  auto check = [](const Variable& w, double fan_in, const char* what) {
    const double bound = 1 / std::sqrt(fan_in);
    const Tensor a = ops::abs(w.data());
    EXPECT_LE(ops::amax(a).item(), bound) << what;
    if (w.numel() > 1000) {
      EXPECT_GT(ops::amax(a).item(), 0.98 * bound) << what;
    }
  };
  nn::Conv1d depthwise(256, 256, 31, {1, 15, 1, 256});
  EXPECT_EQ(depthwise.weight.shape(), (Shape{256, 1, 31}));
  check(depthwise.weight, 31, "depthwise weight");
  check(depthwise.bias, 31, "depthwise bias");
  nn::Conv2d conv(16, 32, {3, 3});
  EXPECT_EQ(conv.weight.shape(), (Shape{32, 16, 3, 3}));
  check(conv.weight, 144, "conv2d weight");
  check(conv.bias, 144, "conv2d bias");
  nn::Conv1d nobias(4, 8, 1, {}, /*bias=*/false);
  EXPECT_FALSE(nobias.bias.defined());
  EXPECT_EQ(nobias.named_parameters().size(), 1u);
}

TEST(ConvNorm, BadInputNamesTheProblem) {
  nn::Conv1d conv(4, 4, 3);
  EXPECT_THROW(conv.forward(Variable(ops::zeros({1, 3, 8}))), ShapeError);          // channels
  EXPECT_THROW(conv.forward(Variable(ops::zeros({4, 8}))), ShapeError);             // unbatched
  EXPECT_THROW(nn::Conv1d(4, 6, 3, {1, 0, 1, 4}), ValueError);                      // groups do not divide
  EXPECT_THROW(nn::Conv2d(2, 2, {3, 3}, {{0, 1}, {0, 0}, {1, 1}, 1}), ValueError);  // stride 0
  nn::Conv2d conv2(1, 2, {3, 3});
  EXPECT_THROW(conv2.forward(Variable(ops::zeros({1, 1, 2, 8}))), ShapeError);  // smaller than the kernel
  nn::BatchNorm1d bn(3);
  EXPECT_THROW(bn.forward(Variable(ops::zeros({2, 4, 5}))), ShapeError);
  EXPECT_THROW(bn.forward(Variable(ops::zeros({2, 3})), test::i64({0, 0}, {2, 1})), ShapeError);
  EXPECT_THROW(bn.forward(Variable(ops::zeros({2, 3, 4})), ops::zeros({2, 5}, DType::I64)), ShapeError);
  EXPECT_THROW(bn.forward(Variable(ops::zeros({1, 3}))), ValueError);  // one value per channel
  EXPECT_THROW(bn.forward(Variable(ops::zeros({2, 3, 2})), test::i64({0, 1, 1, 1}, {2, 2})), ValueError);
  EXPECT_THROW(nn::glu(Variable(ops::zeros({2, 3}))), ShapeError);
  EXPECT_THROW(nn::BatchNorm1d(0), ValueError);
}

}  // namespace
}  // namespace cw
