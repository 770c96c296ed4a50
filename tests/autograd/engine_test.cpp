// The backward engine: reuse, diamonds, no-grad regions, frozen leaves, accumulation,
// retain_graph, detach, and a 10,000-op chain that must not overflow the stack.
#include "autograd/grad_mode.h"
#include "support/check.h"

namespace cw {
namespace {

using test::all_close;
using test::f64;

TEST(Engine, ReusedValueSumsGradients) {
  Variable x(f64({2.0, -3.0}, {2}), true);
  Variable y = x * x + x * 3.0;  // dy/dx = 2x + 3
  ag::sum(y).backward();
  EXPECT_TRUE(all_close(x.grad(), f64({7.0, -3.0}, {2})));
}

TEST(Engine, DiamondGraph) {
  Variable x(f64({0.5}, {1}), true);
  Variable a = ag::exp(x), b = ag::tanh(x);
  Variable y = a * b;  // both branches meet again
  y.backward(ops::ones({1}, DType::F64));
  const double e = std::exp(0.5), t = std::tanh(0.5);
  EXPECT_NEAR(x.grad().item(), e * t + e * (1 - t * t), 1e-12);
}

TEST(Engine, NoGradRegionRecordsNothing) {
  Variable x(f64({1.0}, {1}), true);
  Variable y;
  {
    NoGradGuard ng;
    y = x * 2.0;
    EXPECT_FALSE(GradMode::is_enabled());
  }
  EXPECT_TRUE(GradMode::is_enabled());
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
  EXPECT_THROW(y.backward(), ValueError);
}

TEST(Engine, GuardRestoresOnException) {
  try {
    NoGradGuard ng;
    throw std::runtime_error("x");
  } catch (const std::runtime_error&) {
  }
  EXPECT_TRUE(GradMode::is_enabled());
}

TEST(Engine, FrozenLeavesGetNoGrad) {
  Variable w(f64({1.0, 2.0}, {2}), false);  // frozen
  Variable x(f64({3.0, 4.0}, {2}), true);
  ag::sum(w * x).backward();
  EXPECT_FALSE(w.grad().defined());
  EXPECT_TRUE(all_close(x.grad(), f64({1.0, 2.0}, {2})));
  // A computation on frozen values alone records no graph at all.
  Variable z = w * w;
  EXPECT_FALSE(z.requires_grad());
  // Freezing a leaf after the fact.
  x.requires_grad_(false);
  EXPECT_FALSE((x * w).requires_grad());
}

TEST(Engine, AccumulatesAcrossBackwardCalls) {
  Variable x(f64({1.0, 2.0}, {2}), true);
  ag::sum(x * 3.0).backward();
  ag::sum(x * 3.0).backward();
  EXPECT_TRUE(all_close(x.grad(), f64({6.0, 6.0}, {2})));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  ag::sum(x * 3.0).backward();
  EXPECT_TRUE(all_close(x.grad(), f64({3.0, 3.0}, {2})));
}

TEST(Engine, RetainGraph) {
  Variable x(f64({2.0}, {1}), true);
  Variable y = ag::exp(x) * x;
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  EXPECT_NEAR(x.grad().item(), 2 * (std::exp(2.0) * 3.0), 1e-9);
  // The second call freed the graph; a third must fail with a clear message.
  try {
    y.backward();
    FAIL() << "expected an error";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("retain_graph"), std::string::npos);
  }
}

TEST(Engine, DetachCutsTheGraph) {
  Variable x(f64({2.0}, {1}), true);
  Variable d = (x * x).detach();
  EXPECT_FALSE(d.requires_grad());
  Variable y = x * d;  // d is a constant 4
  y.backward();
  EXPECT_DOUBLE_EQ(x.grad().item(), 4.0);
}

TEST(Engine, NonScalarNeedsExplicitGrad) {
  Variable x(f64({1.0, 2.0}, {2}), true);
  Variable y = x * 2.0;
  EXPECT_THROW(y.backward(), ShapeError);
  EXPECT_THROW(y.backward(ops::ones({3}, DType::F64)), ShapeError);
  y.backward(f64({1.0, 10.0}, {2}));
  EXPECT_TRUE(all_close(x.grad(), f64({2.0, 20.0}, {2})));
}

TEST(Engine, LongChainDoesNotRecurse) {
  Variable x(f64({1.0}, {1}), true);
  Variable y = x;
  for (int i = 0; i < 10000; ++i) y = y * 1.0001;
  y.backward();
  EXPECT_NEAR(x.grad().item(), std::pow(1.0001, 10000), 1e-9);
  // Destroying a graph that backward never ran must not recurse either: 200,000 nodes would
  // take far more stack than a thread has if each destructor called the next.
  Variable z = x;
  for (int i = 0; i < 200000; ++i) z = z + 1.0;
  EXPECT_NEAR(z.item(), 200001.0, 1e-6);
}

TEST(Engine, UnusedSplitOutputGetsZeroGradient) {
  Variable x(f64({1, 2, 3, 4}, {4}), true);
  auto parts = ag::split(x, 2, 0);
  ag::sum(parts[1] * parts[1]).backward();
  EXPECT_TRUE(all_close(x.grad(), f64({0, 0, 6, 8}, {4})));
}

TEST(Engine, IntegerTensorsCannotRequireGrad) {
  EXPECT_THROW(Variable(ops::zeros({2}, DType::I64), true), DTypeError);
}

}  // namespace
}  // namespace cw
