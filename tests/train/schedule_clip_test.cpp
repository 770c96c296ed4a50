// LrSchedule against its closed form at the key steps, and clip_grad_norm against a hand
// computation (torch.nn.utils.clip_grad_norm_ semantics).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numbers>

#include "core/ops.h"
#include "support/check.h"
#include "train/grad_clip.h"
#include "train/lr_schedule.h"

namespace cw {
namespace {

using test::all_close;
using train::LrSchedule;

TEST(LrSchedule, KeySteps) {
  const LrSchedule s{1e-3, 10, 110, 0.1};
  const double min = 1e-4;
  EXPECT_DOUBLE_EQ(s.at(0), 1e-4);  // first update: base / W
  EXPECT_DOUBLE_EQ(s.at(4), 5e-4);
  EXPECT_DOUBLE_EQ(s.at(9), 1e-3);                       // last warmup update reaches base
  EXPECT_DOUBLE_EQ(s.at(10), 1e-3);                      // cosine starts at base
  EXPECT_DOUBLE_EQ(s.at(60), min + (1e-3 - min) * 0.5);  // halfway: midpoint
  EXPECT_DOUBLE_EQ(s.at(35), min + (1e-3 - min) * 0.5 * (1 + std::cos(std::numbers::pi * 0.25)));
  EXPECT_DOUBLE_EQ(s.at(109), min + (1e-3 - min) * 0.5 * (1 + std::cos(std::numbers::pi * 0.99)));
  EXPECT_GT(s.at(109), min);
  EXPECT_DOUBLE_EQ(s.at(110), min);  // end
  EXPECT_DOUBLE_EQ(s.at(100000), min);
  for (int64_t t = 10; t < 110; ++t) EXPECT_LE(s.at(t + 1), s.at(t)) << t;
}

TEST(LrSchedule, NoWarmupAndZeroFloor) {
  const LrSchedule s{2.0, 0, 4, 0.0};
  EXPECT_DOUBLE_EQ(s.at(0), 2.0);
  EXPECT_DOUBLE_EQ(s.at(2), 1.0);
  EXPECT_NEAR(s.at(4), 0.0, 0);
  const LrSchedule all_warmup{1.0, 4, 4, 0.0};
  EXPECT_DOUBLE_EQ(all_warmup.at(3), 1.0);
  EXPECT_DOUBLE_EQ(all_warmup.at(4), 0.0);
}

TEST(LrSchedule, RejectsBadSettings) {
  EXPECT_THROW((LrSchedule{1.0, 10, 5, 0.0}.at(0)), ValueError);
  EXPECT_THROW((LrSchedule{1.0, -1, 5, 0.0}.at(0)), ValueError);
  EXPECT_THROW((LrSchedule{1.0, 0, 5, 1.5}.at(0)), ValueError);
  EXPECT_THROW((LrSchedule{1.0, 0, 5, 0.0}.at(-1)), ValueError);
}

TEST(ClipGradNorm, ScalesToMaxNorm) {
  Variable a(ops::zeros({2}), true), b(ops::zeros({1, 1}, DType::F64), true), none(ops::zeros({3}), true);
  a.set_grad(test::f32({3, 4}, {2}));
  b.set_grad(test::f64({12}, {1, 1}));
  const double norm = train::clip_grad_norm({a, b, none}, 6.5);
  EXPECT_DOUBLE_EQ(norm, 13.0);  // sqrt(9 + 16 + 144), measured before clipping
  const double coef = 6.5 / (13.0 + 1e-6);
  EXPECT_TRUE(all_close(a.grad(), test::f32({float(3 * coef), float(4 * coef)}, {2}), 1e-7, 0));
  EXPECT_TRUE(all_close(b.grad(), test::f64({12 * coef}, {1, 1}), 1e-15, 0));
  EXPECT_FALSE(none.grad().defined());
  EXPECT_NEAR(train::grad_norm({a, b}), 6.5, 1e-6);
}

TEST(ClipGradNorm, NoOpUnderMaxNorm) {
  Variable a(ops::zeros({2}), true);
  a.set_grad(test::f32({3, 4}, {2}));
  const Tensor before = a.grad();
  EXPECT_DOUBLE_EQ(train::clip_grad_norm({a}, 5.5), 5.0);
  EXPECT_TRUE(a.grad().shares_storage(before));
  EXPECT_TRUE(all_close(a.grad(), test::f32({3, 4}, {2}), 0, 0));
}

TEST(ClipGradNorm, NonFiniteNormReturnedGradientsUntouched) {
  Variable a(ops::zeros({2}), true), b(ops::zeros({1}), true);
  a.set_grad(test::f32({std::numeric_limits<float>::quiet_NaN(), 1}, {2}));
  b.set_grad(test::f32({100}, {1}));
  EXPECT_TRUE(std::isnan(train::clip_grad_norm({a, b}, 1.0)));
  EXPECT_EQ(b.grad().item(), 100.0);
  b.set_grad(test::f32({std::numeric_limits<float>::infinity()}, {1}));
  a.set_grad(test::f32({1, 1}, {2}));
  EXPECT_TRUE(std::isinf(train::clip_grad_norm({a, b}, 1.0)));
  EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{1, 1}));
  EXPECT_THROW(train::clip_grad_norm({a}, 0.0), ValueError);
}

// f64 accumulation: 2^24 + 1 ones in f32 would stall a float accumulator at 2^24.
TEST(ClipGradNorm, AccumulatesInDouble) {
  const int64_t n = (int64_t{1} << 24) + 4;
  Variable a(ops::zeros({n}), true);
  a.set_grad(ops::ones({n}));
  EXPECT_DOUBLE_EQ(train::grad_norm({a}), std::sqrt(static_cast<double>(n)));
}

}  // namespace
}  // namespace cw
