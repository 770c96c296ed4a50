// finish_step (train/step_tail.h): a finite step updates at the schedule's rate and clears the
// gradients; a non-finite loss stops before any backward, a non-finite gradient norm after it,
// both leaving the parameters as they were and saying where in the log.
#include "train/step_tail.h"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "autograd/functions.h"
#include "core/ops.h"

namespace cw::train {
namespace {

struct OneParam {
  explicit OneParam(double value = 0.5) : w(ops::full({3}, value, DType::F64), true) {}
  Variable w;
  std::vector<Variable> params{w};
  AdamW opt{{ParamGroup{{"w"}, {w}, 0.0}}, AdamWOptions{}};
  LrSchedule schedule{0.1, 0, 10, 0.0};
};

TEST(StepTail, FiniteStepUpdatesAtTheScheduledRate) {
  OneParam s;
  std::ostringstream log;
  const Variable loss = ag::sum(ag::mul(s.w, s.w));  // gradient 2w = 1 per element
  const StepTail t = finish_step(loss, loss.data().item(), s.params, 0.0, s.opt, s.schedule, 3, log);
  EXPECT_FALSE(t.stopped);
  EXPECT_NEAR(t.norm, std::sqrt(3.0), 1e-12);
  EXPECT_DOUBLE_EQ(t.lr, s.schedule.at(3));
  EXPECT_NEAR(s.w.data().to_vector<double>()[0], 0.5 - t.lr, 1e-6);  // Adam's first step moves by ~lr
  EXPECT_FALSE(s.w.grad().defined());
  EXPECT_TRUE(log.str().empty());
  // Clipping: the norm reported is the one before clipping.
  const Variable loss2 = ag::sum(ag::mul(s.w, s.w));
  EXPECT_GT(finish_step(loss2, loss2.data().item(), s.params, 1e-3, s.opt, s.schedule, 4, log).norm, 1e-3);
}

TEST(StepTail, NonFiniteLossOrNormStopsWithoutAnUpdate) {
  OneParam s;
  std::ostringstream log;
  const Variable loss = ag::sum(ag::mul(s.w, s.w));
  const StepTail a = finish_step(loss, NAN, s.params, 0.0, s.opt, s.schedule, 3, log);
  EXPECT_TRUE(a.stopped);
  EXPECT_FALSE(s.w.grad().defined());  // no backward through a non-finite loss
  EXPECT_NE(log.str().find("stopped at step 4: loss nan"), std::string::npos) << log.str();
  // A finite loss whose gradient is not: d sqrt(x) / dx at 0.
  OneParam z(0.0);
  const Variable root = ag::sum(ag::sqrt(z.w));
  const StepTail b = finish_step(root, root.data().item(), z.params, 0.0, z.opt, z.schedule, 0, log);
  EXPECT_TRUE(b.stopped);
  EXPECT_FALSE(std::isfinite(b.norm));
  EXPECT_EQ(z.opt.step_count(), 0);
  EXPECT_EQ(z.w.data().to_vector<double>()[0], 0.0);
  EXPECT_NE(log.str().find("stopped at step 1"), std::string::npos) << log.str();
}

}  // namespace
}  // namespace cw::train
